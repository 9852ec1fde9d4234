"""What BI tools send when they connect and browse, as their drivers put it on the wire (pgjdbc for
Metabase and DBeaver, lib/pq for Grafana, Npgsql for Power BI), from the tools' statement logs.

Each step is ("simple", sql) for a Query message, ("extended", [sql, ...]) for one
Parse/Bind/Describe/Execute per statement followed by a single Sync (what the drivers send for a
batch), or ("prepared", name, sql) for a named statement described first, as Go drivers do."""

PGJDBC_STARTUP = {"client_encoding": "UTF8", "DateStyle": "ISO", "TimeZone": "Europe/Berlin",
                  "extra_float_digits": "2", "application_name": "PostgreSQL JDBC Driver"}

PGJDBC_TABLES = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, "
    " CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' WHEN true THEN CASE "
    " WHEN n.nspname = 'pg_catalog' OR n.nspname = 'information_schema' THEN CASE c.relkind "
    "  WHEN 'r' THEN 'SYSTEM TABLE' WHEN 'v' THEN 'SYSTEM VIEW' WHEN 'i' THEN 'SYSTEM INDEX' ELSE NULL END "
    " WHEN n.nspname = 'pg_toast' THEN CASE c.relkind WHEN 'r' THEN 'SYSTEM TOAST TABLE' "
    "  WHEN 'i' THEN 'SYSTEM TOAST INDEX' ELSE NULL END "
    " ELSE CASE c.relkind WHEN 'r' THEN 'TEMPORARY TABLE' WHEN 'p' THEN 'TEMPORARY TABLE' "
    "  WHEN 'i' THEN 'TEMPORARY INDEX' WHEN 'S' THEN 'TEMPORARY SEQUENCE' WHEN 'v' THEN 'TEMPORARY VIEW' "
    "  ELSE NULL END END "
    " WHEN false THEN CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'i' THEN 'INDEX' "
    "  WHEN 'P' then 'PARTITIONED INDEX' WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'c' THEN 'TYPE' "
    "  WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END "
    " ELSE NULL END AS TABLE_TYPE, d.description AS REMARKS, '' as TYPE_CAT, '' as TYPE_SCHEM, '' as TYPE_NAME, "
    "'' AS SELF_REFERENCING_COL_NAME, '' AS REF_GENERATION "
    " FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c "
    " LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 and d.classoid = 'pg_class'::regclass) "
    " WHERE c.relnamespace = n.oid AND n.nspname LIKE 'public' "
    " AND (false OR ( c.relkind IN ('r','p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ) "
    " OR ( c.relkind = 'v' AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema' ) ) "
    " ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME")

PGJDBC_COLUMNS = (
    "SELECT * FROM (SELECT n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) "
    "AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) "
    "AS attnum, nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,"
    "pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype "
    " FROM pg_catalog.pg_namespace n  JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid) "
    " JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid)  JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) "
    " LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum) "
    " LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) "
    " LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class') "
    " LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog') "
    " WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped "
    " AND n.nspname LIKE 'public' AND c.relname LIKE 'kinds') c WHERE true  ORDER BY nspname,c.relname,attnum")

PGJDBC_PRIMARY_KEYS = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME, "
    "  (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,   "
    "information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM "
    "FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)   "
    "JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   "
    "JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) "
    "WHERE true  AND n.nspname = E'public' AND ct.relname = E'kinds' AND i.indisprimary "
    "ORDER BY table_name, pk_name, key_seq")

METABASE = {
    "startup": dict(PGJDBC_STARTUP, application_name="Metabase v0.50.8 [f3dea2c4-fd2b-4a2c-b2a4-6de1e1c5b2ed]"),
    "steps": [
        ("extended", ["SET extra_float_digits = 3"]),
        ("extended", ["SET application_name = 'Metabase v0.50.8 [f3dea2c4-fd2b-4a2c-b2a4-6de1e1c5b2ed]'"]),
        ("extended", ["SHOW TRANSACTION ISOLATION LEVEL"]),
        ("extended", ["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"]),
        ("extended", ["BEGIN READ ONLY"]),
        ("extended", ["SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('information_schema') "
                      "AND nspname NOT LIKE 'pg_%' ORDER BY nspname"]),
        ("extended", [PGJDBC_TABLES]),
        ("extended", [PGJDBC_COLUMNS]),
        ("extended", [PGJDBC_PRIMARY_KEYS]),
        ("extended", ["SELECT \"public\".\"kinds\".\"id\" AS \"id\", \"public\".\"kinds\".\"txt\" AS \"txt\", "
                      "\"public\".\"kinds\".\"num\" AS \"num\", \"public\".\"kinds\".\"ts\" AS \"ts\" "
                      "FROM \"public\".\"kinds\" ORDER BY \"public\".\"kinds\".\"id\" ASC LIMIT 2000"]),
        ("extended", ["COMMIT"]),
        ("extended", ["SELECT count(*) AS \"count\", avg(\"public\".\"big\".\"x\") AS \"avg\" FROM \"public\".\"big\""]),
        ("extended", ["SHOW TRANSACTION ISOLATION LEVEL"]),
    ],
}

GRAFANA = {
    # lib/pq's startup: its defaults, then the data source's settings
    "startup": {"extra_float_digits": "2", "DateStyle": "ISO, MDY", "client_encoding": "UTF8",
                "application_name": "grafana"},
    "steps": [
        ("prepared", "", "SELECT 1"),
        ("prepared", "", "SELECT quote_ident(table_name) AS \"table\" FROM information_schema.tables "
                         "WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', "
                         "'_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', "
                         "'timescaledb_information', 'timescaledb_experimental') "
                         "AND table_type = 'BASE TABLE' AND quote_ident(table_schema) IN (SELECT CASE WHEN "
                         "trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END FROM generate_series("
                         "array_lower(string_to_array(current_setting('search_path'),','),1), "
                         "array_upper(string_to_array(current_setting('search_path'),','),1)) AS i, "
                         "string_to_array(current_setting('search_path'),',') s) ORDER BY 1"),
        ("prepared", "", "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM "
                         "information_schema.columns WHERE CASE WHEN array_length(parse_ident('kinds'),1) = 2 "
                         "THEN quote_ident(table_schema) = (parse_ident('kinds'))[1] AND quote_ident(table_name) = "
                         "(parse_ident('kinds'))[2] ELSE quote_ident(table_name) = 'kinds' AND table_schema = "
                         "ANY(current_schemas(false)) END ORDER BY column_name"),
        ("prepared", "", "SELECT id AS \"time\", x AS value FROM big WHERE id BETWEEN 10 AND 40 ORDER BY 1"),
        ("simple", "SELECT floor(extract(epoch from ts)/60)*60 AS \"time\", count(*) FROM kinds "
                   "WHERE ts IS NOT NULL AND ts < 'infinity' GROUP BY 1 ORDER BY 1"),
    ],
}

DBEAVER = {
    "startup": dict(PGJDBC_STARTUP, application_name="DBeaver 24.1.0 - Main <e2e>"),
    "steps": [
        ("extended", ["SET extra_float_digits = 3"]),
        ("extended", ["SET application_name = 'DBeaver 24.1.0 - Main <e2e>'"]),
        ("extended", ["SELECT current_schema(),session_user"]),
        ("extended", ["SELECT * FROM pg_catalog.pg_settings where name='standard_conforming_strings'"]),
        ("extended", ["SELECT string_agg(word, ',') from pg_catalog.pg_get_keywords() "
                      "where word <> ALL ('{a,abs,absolute,action,ada,add,admin,after,all,allocate,alter,always,and,any}'"
                      "::text[])"]),
        ("extended", ["SELECT version()"]),
        ("extended", ["SET ROLE NONE"]),
        ("extended", ["SHOW search_path"]),
        ("extended", ["SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n "
                      "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND "
                      "d.classoid='pg_namespace'::regclass ORDER BY nspname"]),
        ("extended", ["SET application_name = 'DBeaver 24.1.0 - Metadata <e2e>'"]),
        ("extended", ["SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, "
                      "null as consrc_copy FROM pg_catalog.pg_constraint c "
                      "INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid "
                      "LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid "
                      "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND "
                      "d.classoid='pg_constraint'::regclass WHERE c.conrelid="
                      "(SELECT oid FROM pg_class WHERE relname = 'kinds') ORDER BY c.oid"]),
        ("extended", ["SHOW TRANSACTION ISOLATION LEVEL"]),
        ("extended", ["SELECT * FROM public.kinds_view ORDER BY id LIMIT 200"]),
        ("extended", ["DISCARD ALL"]),
        ("extended", ["SHOW application_name"]),
    ],
}

NPGSQL_TYPES = (
    "SELECT ns.nspname, a.typname, a.oid, a.typrelid, a.typbasetype, "
    "CASE WHEN pg_proc.proname='array_recv' THEN 'a' ELSE a.typtype END AS type, "
    "CASE WHEN pg_proc.proname='array_recv' THEN a.typelem WHEN a.typtype='r' THEN rngsubtype ELSE 0 END AS elemoid, "
    "CASE WHEN pg_proc.proname IN ('array_recv','oidvectorrecv') THEN 3 WHEN a.typtype='r' THEN 2 "
    "WHEN a.typtype='d' THEN 1 ELSE 0 END AS ord "
    "FROM pg_type AS a JOIN pg_namespace AS ns ON (ns.oid = a.typnamespace) "
    "JOIN pg_proc ON pg_proc.oid = a.typreceive "
    "LEFT OUTER JOIN pg_class AS cls ON (cls.oid = a.typrelid) "
    "LEFT OUTER JOIN pg_type AS b ON (b.oid = a.typelem) "
    "LEFT OUTER JOIN pg_class AS elemcls ON (elemcls.oid = b.typrelid) "
    "LEFT OUTER JOIN pg_range ON (pg_range.rngtypid = a.oid) "
    "WHERE a.typtype IN ('b', 'r', 'e', 'd') OR (a.typtype = 'c' AND cls.relkind='c') OR "
    "(pg_proc.proname='array_recv' AND (b.typtype IN ('b', 'r', 'e', 'd') OR "
    "(b.typtype = 'p' AND b.typname IN ('record', 'void')) OR (b.typtype = 'c' AND elemcls.relkind='c'))) OR "
    "(a.typtype = 'p' AND a.typname IN ('record', 'void')) ORDER BY ord, a.oid")

POWER_BI = {
    "startup": {"client_encoding": "UTF8", "application_name": "PowerBI"},
    "steps": [
        # Npgsql loads the types with the version, as two statements before one Sync
        ("extended", ["SELECT version()", NPGSQL_TYPES]),
        ("extended", ["SELECT a.attrelid AS oid, a.attname, a.atttypid FROM pg_attribute AS a "
                      "JOIN pg_type AS t ON t.typrelid = a.attrelid WHERE t.typtype = 'c' AND a.attnum > 0 "
                      "AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum"]),
        ("extended", ["SELECT pg_type.oid, enumlabel FROM pg_enum JOIN pg_type ON pg_type.oid=enumtypid "
                      "ORDER BY oid, enumsortorder"]),
        ("extended", ["select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE from INFORMATION_SCHEMA.tables "
                      "where TABLE_SCHEMA not in ('information_schema', 'pg_catalog') order by TABLE_SCHEMA, TABLE_NAME"]),
        ("extended", ["select COLUMN_NAME, ORDINAL_POSITION, IS_NULLABLE, case when (data_type like '%unsigned%') "
                      "then DATA_TYPE || ' unsigned' else DATA_TYPE end as DATA_TYPE from INFORMATION_SCHEMA.columns "
                      "where TABLE_SCHEMA = 'public' and TABLE_NAME = 'kinds' "
                      "order by TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"]),
        ("extended", ["select pkcol.COLUMN_NAME as PK_COLUMN_NAME, fkcol.TABLE_SCHEMA AS FK_TABLE_SCHEMA, "
                      "fkcol.TABLE_NAME AS FK_TABLE_NAME, fkcol.COLUMN_NAME as FK_COLUMN_NAME, "
                      "fkcol.ORDINAL_POSITION as ORDINAL, fkcon.CONSTRAINT_SCHEMA || '_' || fkcol.TABLE_NAME || "
                      "'_kinds_' || fkcon.CONSTRAINT_NAME as FK_NAME from (select distinct constraint_catalog, "
                      "constraint_schema, unique_constraint_schema, constraint_name, unique_constraint_name from "
                      "INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS) fkcon inner join "
                      "INFORMATION_SCHEMA.KEY_COLUMN_USAGE fkcol on fkcon.CONSTRAINT_SCHEMA = fkcol.CONSTRAINT_SCHEMA "
                      "and fkcon.CONSTRAINT_NAME = fkcol.CONSTRAINT_NAME inner join INFORMATION_SCHEMA.KEY_COLUMN_USAGE "
                      "pkcol on fkcon.UNIQUE_CONSTRAINT_SCHEMA = pkcol.CONSTRAINT_SCHEMA and "
                      "fkcon.UNIQUE_CONSTRAINT_NAME = pkcol.CONSTRAINT_NAME where pkcol.TABLE_SCHEMA = 'public' and "
                      "pkcol.TABLE_NAME = 'kinds' and pkcol.ORDINAL_POSITION = fkcol.ORDINAL_POSITION "
                      "order by FK_NAME, fkcol.ORDINAL_POSITION"]),
        ("extended", ["select \"$Table\".\"id\" as \"id\", \"$Table\".\"txt\" as \"txt\", \"$Table\".\"i8\" as \"i8\" "
                      "from \"public\".\"kinds\" \"$Table\" limit 1000"]),
        ("extended", ["select \"rows\".\"h\" as \"h\", count(1) as \"a0\" from (select \"_\".\"h\" from "
                      "\"public\".\"big\" \"_\" where \"_\".\"id\" < 50) \"rows\" group by \"h\" order by \"h\" limit 1001"]),
    ],
}

TOOLS = {"Metabase": METABASE, "Grafana": GRAFANA, "DBeaver": DBEAVER, "Power BI": POWER_BI}
