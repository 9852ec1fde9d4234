// node-postgres against a server (argv[2] = port): parameterised queries and named prepared
// statements; prints the results as JSON so the proxy's and the direct run can be compared.
const { Client } = require('pg');

async function main() {
  const client = new Client({ host: '127.0.0.1', port: Number(process.argv[2]), user: 'rproxy_up', database: 'e2e' });
  await client.connect();
  const out = [];
  const q1 = await client.query('SELECT id, i4, i8::text, num::text, txt, arr, jb FROM kinds WHERE id <= $1 ORDER BY id', [3]);
  out.push(q1.rows, q1.fields.map((f) => [f.name, f.dataTypeID]));
  for (const id of [1, 2, 2, 3]) {
    const r = await client.query({ name: 'by-id', text: 'SELECT id, txt FROM kinds WHERE id = $1', values: [id] });
    out.push(r.rows);
  }
  const r2 = await client.query({ text: 'SELECT $1::text AS a, $2::int AS b, $3::text AS c', values: ['x', 5, null] });
  out.push(r2.rows);
  try {
    await client.query('SELECT 1 / $1::int', [0]);
  } catch (e) {
    out.push(['error', e.code]);
  }
  try {
    await client.query({ name: 'writer', text: 'DELETE FROM guarded WHERE id = $1', values: [1] });
  } catch (e) {
    out.push(['rejected', e.code]);
  }
  out.push((await client.query('SELECT count(*)::int AS n FROM big WHERE id < $1', [500])).rows);
  await client.end();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
