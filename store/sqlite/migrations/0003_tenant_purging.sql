-- A purge under way used to be marked by the sentinel migration id
-- 'realmhook:purging' on a moved record; "being purged" is now a state of its
-- own, so such a record is no longer mistaken for one a migration froze.
UPDATE realmhook_tenants SET state = 'purging', migration_id = ''
WHERE state = 'moved' AND migration_id = 'realmhook:purging';
