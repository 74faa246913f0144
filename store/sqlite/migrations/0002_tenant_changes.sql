-- Every change of a tenant record, however it is written, bumps one sequence
-- number and logs the tenant's key under it, in the same transaction. A
-- replica that caches tenant records reads the sequence to learn, in one
-- small read, whether and which records another process changed.
CREATE TABLE realmhook_tenant_seq (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO realmhook_tenant_seq (id, seq) VALUES (1, 0);

CREATE TABLE realmhook_tenant_changes (
    seq        INTEGER PRIMARY KEY,
    client_key TEXT NOT NULL
);

-- The last 10,000 changes are kept; a reader further behind starts afresh.
CREATE TRIGGER realmhook_tenants_inserted AFTER INSERT ON realmhook_tenants BEGIN
    UPDATE realmhook_tenant_seq SET seq = seq + 1 WHERE id = 1;
    INSERT INTO realmhook_tenant_changes (seq, client_key) SELECT seq, NEW.client_key FROM realmhook_tenant_seq WHERE id = 1;
    DELETE FROM realmhook_tenant_changes WHERE seq <= (SELECT seq FROM realmhook_tenant_seq WHERE id = 1) - 10000;
END;

CREATE TRIGGER realmhook_tenants_updated AFTER UPDATE ON realmhook_tenants BEGIN
    UPDATE realmhook_tenant_seq SET seq = seq + 1 WHERE id = 1;
    INSERT INTO realmhook_tenant_changes (seq, client_key) SELECT seq, NEW.client_key FROM realmhook_tenant_seq WHERE id = 1;
    DELETE FROM realmhook_tenant_changes WHERE seq <= (SELECT seq FROM realmhook_tenant_seq WHERE id = 1) - 10000;
END;

CREATE TRIGGER realmhook_tenants_deleted AFTER DELETE ON realmhook_tenants BEGIN
    UPDATE realmhook_tenant_seq SET seq = seq + 1 WHERE id = 1;
    INSERT INTO realmhook_tenant_changes (seq, client_key) SELECT seq, OLD.client_key FROM realmhook_tenant_seq WHERE id = 1;
    DELETE FROM realmhook_tenant_changes WHERE seq <= (SELECT seq FROM realmhook_tenant_seq WHERE id = 1) - 10000;
END;
