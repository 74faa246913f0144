-- The gateway's outbox: lifecycle events for the app behind realmhook, each
-- written in the transaction of the change it announces and deleted once the
-- app has taken it. seq is the delivery order; writers of one tenant's
-- events take an advisory lock first (see insertEvents), so that within a
-- tenant seq order is commit order. IF NOT EXISTS: tests replay the
-- migrations before this one over it.
CREATE TABLE IF NOT EXISTS realmhook_outbox (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT COLLATE "C" NOT NULL UNIQUE,
    type             TEXT NOT NULL,
    client_key       TEXT COLLATE "C" NOT NULL,
    realm            TEXT NOT NULL DEFAULT '',
    product_base_url TEXT NOT NULL DEFAULT '',
    migration_id     TEXT NOT NULL DEFAULT '',
    from_realm       TEXT NOT NULL DEFAULT '',
    to_realm         TEXT NOT NULL DEFAULT '',
    at               TIMESTAMPTZ,
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       TIMESTAMPTZ,
    last_error       TEXT NOT NULL DEFAULT ''
);
-- Each tenant's oldest event, found per tenant.
CREATE INDEX IF NOT EXISTS realmhook_outbox_tenant ON realmhook_outbox (client_key, seq);
