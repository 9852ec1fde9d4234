"""The connect and browse sequences of Metabase, Grafana, DBeaver and Power BI, replayed message by
message through the proxy and directly: the same messages come back, in the same order."""

from bi_sequences import TOOLS
from harness import check, test
from pgwire import Wire, error_fields
from test_extended import SYNC, bind, describe, execute, parse


def replay(port, tool):
    """Every message the server sent, per step; BackendKeyData left out (it differs by design)."""
    w = Wire(port)
    w.sock.settimeout(30)
    transcript = [("startup", [m for m in w.startup(user="rproxy_up", database="e2e", **tool["startup"]) if m[0] != "K"])]
    for step in tool["steps"]:
        if step[0] == "simple":
            w.send(Wire.query_msg(step[1]))
        elif step[0] == "extended":
            w.send(b"".join(parse("", sql) + bind("", "") + describe("P", "") + execute("") for sql in step[1]) + SYNC)
        else:  # "prepared": described first, then bound and run, as Go drivers do
            _, name, sql = step
            w.send(parse(name, sql) + describe("S", name) + SYNC)
            transcript.append((sql, w.read_until_ready()))
            w.send(bind("", name) + execute("") + SYNC)
        transcript.append((step, w.read_until_ready()))
    w.close()
    return transcript


READ_ONLY_STATUS = b"default_transaction_read_only\0"


def comparable(msgs):
    """The proxy's sessions are read-only from the start (it reports default_transaction_read_only
    = on at startup), so a client's SET ... READ ONLY changes nothing there and is not reported again."""
    return [(t, body) for t, body in msgs if not (t == "S" and body.startswith(READ_ONLY_STATUS))]


def startup_settings(msgs):
    return {body.split(b"\0")[0]: body.split(b"\0")[1] for t, body in msgs if t == "S"}


def show(msgs):
    out = []
    for t, body in msgs:
        out.append((t, error_fields(body).get("M") if t in "EN" else body[:120]))
    return out


@test
def bi_tool_connect_and_browse_sequences_match_direct():
    for name, tool in TOOLS.items():
        direct = replay(env.up.port, tool)
        via = replay(env.proxy_port, tool)
        check(len(via) == len(direct), f"{name}: {len(via)} steps vs {len(direct)}")
        (_, start_via), (_, start_direct) = via[0], direct[0]
        settings_via, settings_direct = startup_settings(start_via), startup_settings(start_direct)
        for key in [b"application_name", b"client_encoding", b"DateStyle", b"TimeZone", b"server_version",
                    b"standard_conforming_strings", b"integer_datetimes", b"IntervalStyle"]:
            check(settings_via.get(key) == settings_direct.get(key),
                  f"{name}: startup {key}: {settings_via.get(key)} vs {settings_direct.get(key)}")
        check(settings_via.get(b"default_transaction_read_only") == b"on", f"{name}: read-only reported")
        rows = 0
        for (step, got), (_, want) in zip(via[1:], direct[1:]):
            check(not any(t == "E" for t, _ in want), f"{name}: the sequence itself fails directly at {step}: {show(want)}")
            got, want = comparable(got), comparable(want)
            check(got == want, f"{name}: {str(step)[:150]}\nproxy:  {show(got)[:12]}\ndirect: {show(want)[:12]}")
            rows += sum(1 for t, _ in got if t == "D")
        check(rows > 10, f"{name}: the sequence returned rows ({rows})")
