-- realmhook's own tables. Keys are COLLATE "C" so that their order is byte
-- order, as in the SQLite backend, whatever the database's default collation,
-- and so that keyset reads in that order use the primary key index.
-- NULL stands for the zero time.

CREATE TABLE realmhook_tenants (
    client_key                 TEXT COLLATE "C" PRIMARY KEY,
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
    enabled                    BOOLEAN NOT NULL DEFAULT false,
    migration_id               TEXT NOT NULL DEFAULT '',
    moved_to                   TEXT NOT NULL DEFAULT '',
    purge_after                TIMESTAMPTZ,
    installed_at               TIMESTAMPTZ,
    updated_at                 TIMESTAMPTZ
);
CREATE INDEX realmhook_tenants_state ON realmhook_tenants (state, client_key);

-- value is the tenant's JSON byte for byte: TEXT, not jsonb, which would
-- reorder keys and drop whitespace.
CREATE TABLE realmhook_properties (
    client_key TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (client_key, key)
);

CREATE TABLE realmhook_migrations (
    client_key          TEXT COLLATE "C" NOT NULL,
    id                  TEXT COLLATE "C" NOT NULL,
    source_realm        TEXT NOT NULL DEFAULT '',
    target_realm        TEXT NOT NULL DEFAULT '',
    state               TEXT NOT NULL,
    start_time          TIMESTAMPTZ,
    end_time            TIMESTAMPTZ,
    error_response_code TEXT NOT NULL DEFAULT '',
    message             TEXT NOT NULL DEFAULT '',
    tables_done         BIGINT NOT NULL DEFAULT 0,
    tables_total        BIGINT NOT NULL DEFAULT 0,
    rows_copied         BIGINT NOT NULL DEFAULT 0,
    rows_total          BIGINT NOT NULL DEFAULT 0,
    checkpoint          TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    PRIMARY KEY (client_key, id)
);
CREATE INDEX realmhook_migrations_state ON realmhook_migrations (state, created_at);

CREATE TABLE realmhook_migration_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    client_key   TEXT COLLATE "C" NOT NULL,
    migration_id TEXT COLLATE "C" NOT NULL,
    from_state   TEXT NOT NULL DEFAULT '',
    to_state     TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX realmhook_migration_events_migration ON realmhook_migration_events (client_key, migration_id, id);

CREATE TABLE realmhook_leases (
    name  TEXT COLLATE "C" PRIMARY KEY,
    owner TEXT NOT NULL,
    until TIMESTAMPTZ NOT NULL
);
