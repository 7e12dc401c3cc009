//! The schema, created and migrated by brama itself: numbered steps, each applied once, in
//! order, in its own transaction, recorded in `brama_schema`. Nodes starting together take an
//! advisory lock, so one of them migrates and the others find it done. A database migrated by a
//! newer brama is refused rather than written with an older idea of its tables.

use deadpool_postgres::Object;

/// (version, what it does, SQL). Append only: a step that shipped never changes.
const STEPS: &[(i32, &str, &str)] = &[
    (
        1,
        "router applications, deliveries, notifications, idempotency keys",
        "CREATE TABLE router_applications (
        id text PRIMARY KEY,
        received_at int8 NOT NULL,
        record json NOT NULL
    );
    CREATE TABLE router_deliveries (
        application text NOT NULL,
        service text NOT NULL,
        registry text NOT NULL,
        state text NOT NULL,
        next_attempt_at int8,
        lease_owner text,
        lease_until int8,
        record json NOT NULL,
        request text,
        PRIMARY KEY (application, service)
    );
    CREATE INDEX router_deliveries_unfinished ON router_deliveries (lease_until)
        WHERE state IN ('pending', 'retrying', 'in_flight');
    CREATE INDEX router_deliveries_held ON router_deliveries (lease_owner)
        WHERE state IN ('pending', 'retrying', 'in_flight');
    CREATE TABLE router_notifications (
        id text PRIMARY KEY,
        next_attempt_at int8 NOT NULL,
        lease_owner text,
        lease_until int8,
        record json NOT NULL
    );
    CREATE TABLE router_idempotency (
        submitter text NOT NULL,
        key text NOT NULL,
        record json NOT NULL,
        PRIMARY KEY (submitter, key)
    );",
    ),
    (
        2,
        "message log records, time-stamping rounds, the archives' chain",
        "CREATE TABLE messagelog_rounds (
        id bigserial PRIMARY KEY,
        tsa text NOT NULL,
        token bytea NOT NULL,
        digests bytea[] NOT NULL
    );
    CREATE TABLE messagelog_records (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        node text NOT NULL,
        written_at int8 NOT NULL,
        waits bool NOT NULL,
        digest bytea,
        size int8 NOT NULL,
        container bytea,
        blob oid,
        round int8 REFERENCES messagelog_rounds,
        place int4,
        stamped_at int8,
        archived_at int8,
        CHECK ((container IS NULL) <> (blob IS NULL)),
        CHECK (NOT waits OR digest IS NOT NULL)
    );
    -- Containers are zips: compressing them again costs the database CPU for nothing.
    ALTER TABLE messagelog_records ALTER COLUMN container SET STORAGE EXTERNAL;
    CREATE INDEX messagelog_records_waiting ON messagelog_records (id) WHERE waits;
    CREATE INDEX messagelog_records_name ON messagelog_records (name text_pattern_ops);
    CREATE INDEX messagelog_records_round ON messagelog_records (round);
    CREATE INDEX messagelog_records_to_archive ON messagelog_records (stamped_at, id)
        WHERE archived_at IS NULL AND stamped_at IS NOT NULL;
    CREATE INDEX messagelog_records_archived ON messagelog_records (archived_at)
        WHERE archived_at IS NOT NULL;
    CREATE TABLE messagelog_archive_link (
        one bool PRIMARY KEY DEFAULT true CHECK (one),
        digest text NOT NULL,
        file_name text NOT NULL
    );",
    ),
];

/// Any number that other users of the database are unlikely to lock.
const MIGRATION_LOCK: i64 = 0x6272_616d_615f_6d67; // "brama_mg"

pub async fn run(c: &Object) -> Result<(), String> {
    let e = |e: tokio_postgres::Error| format!("migrating the schema: {e}");
    c.batch_execute(&format!(
        "SELECT pg_advisory_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS brama_schema (
             version int4 PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(e)?;
    let result = apply_missing(c).await;
    let unlock = c
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await;
    result?;
    unlock.map_err(e)
}

async fn apply_missing(c: &Object) -> Result<(), String> {
    let e = |e: tokio_postgres::Error| format!("migrating the schema: {e}");
    let current: i32 = c
        .query_one("SELECT COALESCE(max(version), 0) FROM brama_schema", &[])
        .await
        .map_err(e)?
        .get(0);
    let latest = STEPS.last().map_or(0, |s| s.0);
    if current > latest {
        return Err(format!(
            "the database's schema is version {current}, newer than this brama knows ({latest}): \
             run the newer brama, or restore a database of this version"
        ));
    }
    for (version, description, sql) in STEPS.iter().filter(|s| s.0 > current) {
        c.batch_execute(&format!("BEGIN; {sql}"))
            .await
            .map_err(|err| format!("schema step {version} ({description}): {err}"))?;
        let done = c
            .execute(
                "INSERT INTO brama_schema (version, description) VALUES ($1, $2)",
                &[version, description],
            )
            .await;
        match done {
            Ok(_) => c.batch_execute("COMMIT").await.map_err(e)?,
            Err(err) => {
                let _ = c.batch_execute("ROLLBACK").await;
                return Err(format!("schema step {version}: {err}"));
            }
        }
        tracing::info!(version, description, "store: schema migrated");
    }
    Ok(())
}
