//! The access database end to end: users, tokens, agents and the audit log.

use super::*;
use crate::time::rfc3339;

#[tokio::test]
async fn users_tokens_agents_and_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Access::open(dir.path()).expect("opens");
    let created = a
        .add_user("li.wei", Role::Operator, None, 1_000)
        .await
        .expect("user");
    assert_eq!(created.password.len(), GENERATED_PASSWORD_CHARS);
    assert!(matches!(
        a.add_user("li.wei", Role::Viewer, None, 1_000).await,
        Err(AccessError::Conflict(_))
    ));
    assert!(matches!(
        a.add_user("bad name", Role::Viewer, None, 1_000).await,
        Err(AccessError::Invalid(_))
    ));
    assert!(matches!(
        a.add_user("short", Role::Viewer, Some("abc".into()), 1_000).await,
        Err(AccessError::Invalid(_))
    ));
    let me = a
        .login("li.wei", &created.password)
        .await
        .expect("db")
        .expect("logs in");
    assert_eq!(me.role, Role::Operator);
    assert_eq!(a.login("li.wei", "wrong password").await.expect("db"), None);
    assert_eq!(a.login("nobody", "whatever123").await.expect("db"), None);

    let t = a
        .create_token("li.wei", "script", Some(5_000), 1_000)
        .await
        .expect("token");
    assert_eq!(a.by_token(&t.token, 2_000).await.expect("db"), Some(me.clone()));
    assert_eq!(a.by_token(&t.token, 2_500).await.expect("db"), Some(me.clone()));
    let listed = a.tokens(Some("li.wei".into())).await.expect("tokens");
    assert_eq!(
        listed[0].last_used_at,
        Some(rfc3339(2_000)),
        "last use is kept to the minute"
    );
    assert_eq!(a.by_token(&t.token, 6_000).await.expect("db"), None, "expired");
    assert_eq!(a.by_token("wpt_forged", 2_000).await.expect("db"), None);
    a.set_disabled("li.wei", true).await.expect("disable");
    assert_eq!(
        a.by_token(&t.token, 2_000).await.expect("db"),
        None,
        "disabled user"
    );
    a.set_disabled("li.wei", false).await.expect("enable");
    let viewer = Identity {
        user: "other".into(),
        role: Role::Viewer,
    };
    assert!(matches!(
        a.revoke_token(t.id, &viewer, 2_000).await,
        Err(AccessError::Forbidden(_))
    ));
    a.revoke_token(t.id, &me, 2_000).await.expect("revoke own");
    assert_eq!(a.by_token(&t.token, 2_500).await.expect("db"), None);

    let e = a
        .enroll("web-1", 10_000, 100_000, "admin", 1_000)
        .await
        .expect("enroll");
    let wrong = a.authenticate_agent("web-2", "web-2", "", &e.token, 2_000).await;
    assert!(wrong.expect_err("other agent").contains("web-1"));
    let cred = a
        .authenticate_agent("web-1", "web-1", "", &e.token, 2_000)
        .await
        .expect("enrols")
        .expect("a credential");
    assert!(
        a.authenticate_agent("web-1", "web-1", "", &e.token, 2_000)
            .await
            .is_err(),
        "once"
    );
    assert_eq!(
        a.authenticate_agent("web-1", "web-1", &cred, "", 3_000).await,
        Ok(None)
    );
    let other_host = a.authenticate_agent("web-1", "db-1", &cred, "", 3_000).await;
    assert!(other_host.expect_err("bound").contains("db-1"));
    assert!(
        a.authenticate_agent("web-1", "web-1", &cred, "", 200_000)
            .await
            .is_err(),
        "expired"
    );
    a.revoke_agent("web-1", "admin", 4_000).await.expect("revoke");
    let revoked = a.authenticate_agent("web-1", "web-1", &cred, "", 5_000).await;
    assert!(revoked.expect_err("revoked").contains("revoked"));

    a.audit(AuditRecord {
        at_ms: 1,
        identity: Some(me),
        address: "127.0.0.1:5".into(),
        method: "POST".into(),
        path: "/api/v1/users".into(),
        status: 201,
        detail: redact(br#"{"name":"x","password":"hunter22222"}"#),
    })
    .await
    .expect("audit");
    let log = a.audit_log(None, 10).await.expect("log");
    assert_eq!(log.len(), 1);
    assert!(!log[0].detail.contains("hunter"), "{}", log[0].detail);
    let conn = a.conn.lock().expect("lock");
    assert!(conn.execute("DELETE FROM audit", []).is_err());
    assert!(conn.execute("UPDATE audit SET actor = 'x'", []).is_err());
}

#[tokio::test]
async fn an_access_database_from_before_versioning_is_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // As the collector wrote it before the schema had a version.
        let conn = Connection::open(dir.path().join("access.db")).expect("open");
        conn.execute_batch(
            "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
                                 created_ms INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);",
        )
        .expect("old schema");
    }
    let a = Access::open(dir.path()).expect("migrates");
    let created = a.add_user("li", Role::Operator, None, 1_000).await.expect("add");
    assert_eq!(
        a.login("li", &created.password).await.expect("login"),
        Some(Identity {
            user: "li".into(),
            role: Role::Operator
        })
    );
    assert_eq!(a.login("li", "wrong password").await.expect("login"), None);
    // Version 2 rebuilt the users table for the approver role; tokens still point at it.
    let token = a.create_token("li", "t", None, 1_000).await.expect("token");
    a.add_user("chen", Role::Approver, None, 1_000)
        .await
        .expect("an approver");
    assert_eq!(
        a.by_token(&token.token, 2_000)
            .await
            .expect("token")
            .map(|i| i.role),
        Some(Role::Operator)
    );
    drop(a);
    let conn = Connection::open(dir.path().join("access.db")).expect("open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, super::schema::MIGRATIONS.len() as i64);
    conn.pragma_update(None, "user_version", 7).expect("set");
    drop(conn);
    let e = Access::open(dir.path()).err().expect("refused").to_string();
    assert!(e.contains("newer") && e.contains("access database"), "{e}");
}

#[tokio::test]
async fn the_approver_upgrade_keeps_every_user_and_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Access::open(dir.path()).expect("opens");
    let li = a.add_user("li", Role::Operator, None, 1_000).await.expect("li");
    let token = a.create_token("li", "laptop", None, 1_000).await.expect("token");
    a.add_user("wang", Role::Viewer, None, 1_000).await.expect("wang");
    drop(a);
    {
        // Back to access schema 1 as an older collector left it: the old
        // CHECK, the rows in place, foreign keys on as it ran them.
        let conn = Connection::open(dir.path().join("access.db")).expect("open");
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE users_v1 (name TEXT PRIMARY KEY,
                 role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
                 password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
             INSERT INTO users_v1 SELECT * FROM users;
             DROP TABLE users;
             ALTER TABLE users_v1 RENAME TO users;
             DROP TABLE user_prefs;
             PRAGMA user_version = 1;",
        )
        .expect("back to version 1");
        assert!(
            conn.execute("INSERT INTO users VALUES ('x', 'approver', 'h', 1, 0)", [])
                .is_err(),
            "version 1 refuses the approver role"
        );
    }
    let a = Access::open(dir.path()).expect("migrates to the newest");
    assert_eq!(
        a.login("li", &li.password).await.expect("login").map(|i| i.role),
        Some(Role::Operator)
    );
    assert_eq!(
        a.by_token(&token.token, 2_000)
            .await
            .expect("token")
            .map(|i| i.user),
        Some("li".to_string())
    );
    let names: Vec<String> = a
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["li", "wang"]);
    a.add_user("chen", Role::Approver, None, 3_000)
        .await
        .expect("an approver now");
    let conn = a.conn.lock().expect("lock");
    let broken: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(broken, 0, "tokens still point at their users");
}
