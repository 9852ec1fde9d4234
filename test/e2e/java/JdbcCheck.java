// pgjdbc against a server (args: port): prepared statements with prepareThreshold=1 and binary
// transfer, DatabaseMetaData, setFetchSize in a read-only transaction, setReadOnly(true). Prints
// what it read so the proxy's and the direct run can be compared.
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static void dump(ResultSet rs, StringBuilder out, String... columns) throws SQLException {
        while (rs.next()) {
            for (String c : columns) out.append(c).append('=').append(rs.getString(c)).append(' ');
            out.append('\n');
        }
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.setProperty("user", "rproxy_up");
        if (System.getenv("PGPASSWORD") != null) p.setProperty("password", System.getenv("PGPASSWORD"));
        p.setProperty("prepareThreshold", "1");
        p.setProperty("binaryTransfer", "true");
        StringBuilder out = new StringBuilder();
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + args[0] + "/e2e", p)) {
            c.setReadOnly(true);
            try (PreparedStatement ps = c.prepareStatement("SELECT id, i4, i8, num, txt, ts, arr FROM kinds WHERE id <= ? ORDER BY id")) {
                for (int round = 0; round < 3; round++) {
                    ps.setInt(1, 3);
                    try (ResultSet rs = ps.executeQuery()) {
                        dump(rs, out, "id", "i4", "i8", "num", "txt", "ts", "arr");
                    }
                }
            }
            DatabaseMetaData md = c.getMetaData();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                dump(rs, out, "TABLE_NAME", "TABLE_TYPE");
            }
            try (ResultSet rs = md.getColumns(null, "public", "kinds", "%")) {
                dump(rs, out, "COLUMN_NAME", "TYPE_NAME", "ORDINAL_POSITION", "IS_NULLABLE");
            }
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "kinds")) {
                dump(rs, out, "COLUMN_NAME", "KEY_SEQ");
            }
            c.setAutoCommit(false);  // fetch size needs a transaction: portals with row limits
            try (Statement st = c.createStatement()) {
                st.setFetchSize(100);
                long sum = 0, n = 0;
                try (ResultSet rs = st.executeQuery("SELECT id FROM big ORDER BY id")) {
                    while (rs.next()) { sum += rs.getLong(1); n++; }
                }
                out.append("fetched ").append(n).append(" sum ").append(sum).append('\n');
            }
            c.commit();
            c.setAutoCommit(true);
            try (Statement st = c.createStatement()) {
                st.executeUpdate("DELETE FROM guarded");
                out.append("write accepted?!\n");
            } catch (SQLException e) {
                out.append("write refused ").append(e.getSQLState()).append('\n');
            }
        }
        System.out.print(out);
    }
}
