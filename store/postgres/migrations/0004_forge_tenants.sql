-- A Forge tenant is found by its installation (which changes on a
-- re-install) and, for a re-install on the same site, by the site's cloud id.
ALTER TABLE realmhook_tenants ADD COLUMN cloud_id TEXT NOT NULL DEFAULT '';
CREATE INDEX realmhook_tenants_installation ON realmhook_tenants (installation_id) WHERE installation_id <> '';
CREATE INDEX realmhook_tenants_cloud ON realmhook_tenants (cloud_id) WHERE cloud_id <> '';
