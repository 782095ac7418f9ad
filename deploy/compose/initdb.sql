-- One database and one role per service (run once, by the postgres image's entrypoint, on an empty data dir).
-- Passwords here are for trying it out; a real deployment sets its own (and the DSNs in compose.yaml).
CREATE ROLE campaign LOGIN PASSWORD 'campaign';
CREATE ROLE submissions LOGIN PASSWORD 'submissions';
CREATE ROLE rewards LOGIN PASSWORD 'rewards';
CREATE ROLE notify LOGIN PASSWORD 'notify';
CREATE DATABASE campaign OWNER campaign;
CREATE DATABASE submissions OWNER submissions;
CREATE DATABASE rewards OWNER rewards;
CREATE DATABASE notify OWNER notify;
