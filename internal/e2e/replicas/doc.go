// Package replicas runs three signet-server processes on one PostgreSQL
// database, as a deployment with replicas behind a load balancer would, and
// checks what replicas promise: concurrent publishes of one version through
// different replicas are decided once (one 200, the rest 400 VERSION),
// nothing is lost or duplicated, and every replica serves a new version
// within a bound (invalidation by LISTEN/NOTIFY).
//
// The tests need PostgreSQL (SIGNET_TEST_POSTGRES_URL, an administrative
// URL; each test creates a database of its own and drops it). Without it
// they skip, or fail when SIGNET_TEST_REQUIRE names "all" or "postgres".
//
// The package has no non-test code. Invariants: the servers listen on
// 127.0.0.1 only, are stopped by the test that started them, and every
// wait is bounded in time.
package replicas
