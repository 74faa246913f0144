-- Every change of a tenant record, however it is written, bumps one sequence
-- number and logs the tenant's key under it, in the same transaction. A
-- replica that caches tenant records reads the sequence to learn, in one
-- small read, whether and which records another replica changed. The
-- sequence row's lock is held to commit, so numbers become visible in order:
-- a reader that has seen N has seen every change numbered below N.
CREATE TABLE realmhook_tenant_seq (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO realmhook_tenant_seq (id, seq) VALUES (1, 0);

CREATE TABLE realmhook_tenant_changes (
    seq        BIGINT PRIMARY KEY,
    client_key TEXT NOT NULL
);

-- The last 10,000 changes are kept; a reader further behind starts afresh.
CREATE FUNCTION realmhook_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
    k TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        k := OLD.client_key;
    ELSE
        k := NEW.client_key;
    END IF;
    UPDATE realmhook_tenant_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO n;
    INSERT INTO realmhook_tenant_changes (seq, client_key) VALUES (n, k);
    DELETE FROM realmhook_tenant_changes WHERE seq <= n - 10000;
    RETURN NULL;
END
$$;

CREATE TRIGGER realmhook_tenants_changed AFTER INSERT OR UPDATE OR DELETE ON realmhook_tenants
    FOR EACH ROW EXECUTE FUNCTION realmhook_tenant_changed();
