-- Indexes for the web dashboard's lists.
--
-- A project's requests of one status, newest first (the requests awaiting
-- approval, asked project by project): read in order from this index,
-- where (project, id) reads every request of the project and
-- (status, id) every request of the status.
CREATE INDEX service_requests_project_status ON service_requests (project, status, id);

-- The repositories (GUNs with a current root) in name order, a page at a
-- time or searched: one entry per repository, where the primary key
-- (gun, role) holds one per role.
CREATE INDEX tuf_heads_role_gun ON tuf_heads (role, gun);
