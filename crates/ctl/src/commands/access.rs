//! Who may do what: `whoami`, `users`, `tokens`, `audit`.

use anyhow::Context;
use watchpost_model::api::{
    ApiToken, AuditEntry, CreatedToken, CreatedUser, NewToken, NewUser, User, Whoami,
};

use crate::args::{TokensCmd, UsersCmd};
use crate::client::{Client, path_segment};
use crate::format::{emit, when, when_exact, when_or};
use crate::table::Table;

/// `whoami`.
pub async fn whoami(client: &Client, json: bool) -> anyhow::Result<()> {
    let me: Whoami = client.get("/api/v1/whoami", &[]).await?;
    emit(json, &me, || {
        let mut t = Table::new(&["USER", "ROLE"]);
        t.row(vec![me.user.clone(), me.role.as_str().to_string()]);
        t
    })
}

/// `users [list|add|disable|enable]`.
#[allow(clippy::print_stdout)]
pub async fn users(client: &Client, json: bool, command: Option<UsersCmd>) -> anyhow::Result<()> {
    match command {
        None | Some(UsersCmd::List) => {
            let users: Vec<User> = client.get("/api/v1/users", &[]).await?;
            emit(json, &users, || {
                let mut t = Table::new(&["NAME", "ROLE", "CREATED", "STATE"]);
                for u in &users {
                    t.row(vec![
                        u.name.clone(),
                        u.role.as_str().to_string(),
                        when(&u.created_at),
                        if u.disabled {
                            "disabled".into()
                        } else {
                            "active".into()
                        },
                    ]);
                }
                t
            })
        }
        Some(UsersCmd::Add {
            name,
            role,
            password_stdin,
        }) => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let created: CreatedUser = client
                .post("/api/v1/users", &NewUser { name, role, password })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("user {} ({}) created", created.name, created.role.as_str());
                if !password_stdin {
                    println!("password (shown once): {}", created.password);
                }
            }
            Ok(())
        }
        Some(UsersCmd::Disable { name }) => set_user_state(client, &name, "disable").await,
        Some(UsersCmd::Enable { name }) => set_user_state(client, &name, "enable").await,
    }
}

/// `tokens [list|create|revoke]`.
#[allow(clippy::print_stdout)]
pub async fn tokens(client: &Client, json: bool, command: Option<TokensCmd>) -> anyhow::Result<()> {
    match command {
        None | Some(TokensCmd::List) => {
            let tokens: Vec<ApiToken> = client.get("/api/v1/tokens", &[]).await?;
            emit(json, &tokens, || {
                let mut t = Table::new(&["ID", "USER", "NAME", "CREATED", "EXPIRES", "REVOKED", "LAST USED"]);
                for k in &tokens {
                    t.row(vec![
                        k.id.to_string(),
                        k.user.clone(),
                        k.name.clone(),
                        when(&k.created_at),
                        when_or(k.expires_at.as_ref(), "never"),
                        when_or(k.revoked_at.as_ref(), "-"),
                        when_or(k.last_used_at.as_ref(), "-"),
                    ]);
                }
                t
            })
        }
        Some(TokensCmd::Create { name, expires_in }) => {
            let created: CreatedToken = client
                .post("/api/v1/tokens", &NewToken { name, expires_in })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("token {} (shown once; keep it secret):", created.id);
                println!("{}", created.token);
                println!("use it with: export WATCHPOST_TOKEN=<token>");
            }
            Ok(())
        }
        Some(TokensCmd::Revoke { id }) => {
            client
                .post_empty(&format!("/api/v1/tokens/{id}/revoke"), &())
                .await?;
            println!("token {id} revoked");
            Ok(())
        }
    }
}

/// `audit`.
pub async fn audit(client: &Client, json: bool, actor: Option<String>, limit: usize) -> anyhow::Result<()> {
    let mut q = vec![("limit".to_string(), limit.to_string())];
    if let Some(a) = actor {
        q.push(("actor".into(), a));
    }
    let entries: Vec<AuditEntry> = client.get("/api/v1/audit", &q).await?;
    emit(json, &entries, || {
        let mut t = Table::new(&["ID", "AT", "ACTOR", "ROLE", "FROM", "REQUEST", "STATUS", "DETAIL"]);
        for e in &entries {
            t.row(vec![
                e.id.to_string(),
                when_exact(&e.at),
                e.actor.clone(),
                e.role.map_or("-", |r| r.as_str()).to_string(),
                e.address.clone(),
                format!("{} {}", e.method, e.path),
                e.status.to_string(),
                e.detail.clone(),
            ]);
        }
        t
    })
}

/// `users disable|enable NAME`.
#[allow(clippy::print_stdout)]
async fn set_user_state(client: &Client, name: &str, action: &str) -> anyhow::Result<()> {
    client
        .post_empty(&format!("/api/v1/users/{}/{action}", path_segment(name)), &())
        .await?;
    println!("user {name}: {action}d");
    Ok(())
}
