-- Times are INTEGER unix microseconds in UTC; NULL stands for the zero time.

CREATE TABLE realmhook_tenants (
    client_key                 TEXT PRIMARY KEY,
    shared_secret              TEXT NOT NULL,
    base_url                   TEXT NOT NULL DEFAULT '',
    display_url                TEXT NOT NULL DEFAULT '',
    product_type               TEXT NOT NULL DEFAULT '',
    description                TEXT NOT NULL DEFAULT '',
    service_entitlement_number TEXT NOT NULL DEFAULT '',
    installation_id            TEXT NOT NULL DEFAULT '',
    oauth_client_id            TEXT NOT NULL DEFAULT '',
    plugins_version            TEXT NOT NULL DEFAULT '',
    app_key                    TEXT NOT NULL DEFAULT '',
    state                      TEXT NOT NULL,
    enabled                    INTEGER NOT NULL DEFAULT 0,
    migration_id               TEXT NOT NULL DEFAULT '',
    moved_to                   TEXT NOT NULL DEFAULT '',
    purge_after                INTEGER,
    installed_at               INTEGER,
    updated_at                 INTEGER
);
CREATE INDEX realmhook_tenants_state ON realmhook_tenants (state, client_key);

-- value is the tenant's JSON, byte for byte.
CREATE TABLE realmhook_properties (
    client_key TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (client_key, key)
);

CREATE TABLE realmhook_migrations (
    client_key          TEXT NOT NULL,
    id                  TEXT NOT NULL,
    source_realm        TEXT NOT NULL DEFAULT '',
    target_realm        TEXT NOT NULL DEFAULT '',
    state               TEXT NOT NULL,
    start_time          INTEGER,
    end_time            INTEGER,
    error_response_code TEXT NOT NULL DEFAULT '',
    message             TEXT NOT NULL DEFAULT '',
    tables_done         INTEGER NOT NULL DEFAULT 0,
    tables_total        INTEGER NOT NULL DEFAULT 0,
    rows_copied         INTEGER NOT NULL DEFAULT 0,
    rows_total          INTEGER NOT NULL DEFAULT 0,
    checkpoint          TEXT NOT NULL DEFAULT '',
    created_at          INTEGER,
    updated_at          INTEGER,
    PRIMARY KEY (client_key, id)
);
CREATE INDEX realmhook_migrations_state ON realmhook_migrations (state, created_at);

CREATE TABLE realmhook_migration_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    client_key   TEXT NOT NULL,
    migration_id TEXT NOT NULL,
    from_state   TEXT NOT NULL DEFAULT '',
    to_state     TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX realmhook_migration_events_migration ON realmhook_migration_events (client_key, migration_id, id);

CREATE TABLE realmhook_leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until INTEGER NOT NULL
);
