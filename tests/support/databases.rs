//! Real database and middleware servers for the tests, each started from
//! its Debian package's binaries on a loopback port under a temporary
//! directory (never as a system service), and stopped when dropped:
//! MariaDB, PostgreSQL (with a streaming standby), Redis and nginx.
//! Each is stopped with SIGTERM, as an operator would, when `stop`ped or dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildProcess, free_port};

/// Waits until `ready` holds, up to `limit`; panics naming `what` otherwise.
fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what} did not start within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || run(Command::new("id").arg("-u")).trim() == "0"
}

/// A server process and the signal that stops it as an operator would
/// (SIGTERM; PostgreSQL's fast shutdown is SIGINT, as SIGTERM waits for
/// every client to leave). Stopped when `stop`ped or dropped; killed if it
/// has not exited 30 s later.
struct Server(Option<ChildProcess>, &'static str);

impl Server {
    fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.signal(self.1);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && !matches!(c.0.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MariaDB server with a `watchpost` user (password `wp-secret`).
pub struct MariaDb {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Its Unix socket.
    pub socket: PathBuf,
    dir: tempfile::TempDir,
    child: Server,
}

impl MariaDb {
    /// Initialises a data directory and starts the server.
    pub fn start() -> MariaDb {
        crate::peers_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let user = run(Command::new("id").arg("-un")).trim().to_string();
        run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .arg("--skip-test-db"));
        let mut db = MariaDb {
            port: free_port(),
            socket: dir.path().join("sock"),
            dir,
            child: Server(None, "TERM"),
        };
        db.launch();
        db.sql(
            "CREATE USER watchpost@'%' IDENTIFIED BY 'wp-secret'; \
                GRANT PROCESS, REPLICA MONITOR ON *.* TO watchpost@'%'; \
                CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB;",
        );
        db
    }

    fn launch(&mut self) {
        let d = self.dir.path();
        let user = run(Command::new("id").arg("-un")).trim().to_string();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--user={user}"))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg("--innodb-buffer-pool-size=16M")
            .arg("--max-connections=40")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Server(Some(ChildProcess(child)), "TERM");
        let socket = self.socket.clone();
        wait_until("mariadbd", Duration::from_secs(60), || {
            Command::new("mariadb-admin")
                .args(["--no-defaults", "-S"])
                .arg(&socket)
                .arg("ping")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    }

    /// Runs SQL as the administrator through the `mariadb` client; its
    /// output, tab-separated, without column names.
    pub fn sql(&self, sql: &str) -> String {
        run(Command::new("mariadb")
            .args(["--no-defaults", "-N", "-B", "-S"])
            .arg(&self.socket)
            .args(["-e", sql]))
    }

    /// One value of `SHOW GLOBAL STATUS` or `SHOW GLOBAL VARIABLES`, as the
    /// server itself reports it.
    pub fn global(&self, what: &str, name: &str) -> f64 {
        let out = self.sql(&format!("SHOW GLOBAL {what} LIKE '{name}'"));
        out.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {out:?}"))
    }

    /// Stops the server (its port then refuses).
    pub fn stop(&mut self) {
        self.child.stop();
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

/// The PostgreSQL binaries of the installed Debian package.
fn pg_bin(tool: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tests/peers/setup.sh)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join(tool).exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|d| d.join(tool))
        .expect("a PostgreSQL bin directory")
}

/// A command run as the `postgres` system user when the tests run as root
/// (PostgreSQL refuses to run as root).
fn as_pg_user(tool: &str) -> Command {
    if is_root() {
        // setpriv execs the tool itself, so stopping the child stops it.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"])
            .arg(pg_bin(tool));
        c
    } else {
        Command::new(pg_bin(tool))
    }
}

/// A PostgreSQL server; password sign-in (SCRAM-SHA-256) for `watchpost`
/// (password `wp-secret`, role pg_monitor) over TCP.
pub struct Postgres {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Server,
}

impl Postgres {
    /// A primary that allows a streaming standby.
    pub fn start() -> Postgres {
        crate::peers_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(as_pg_user("initdb").args(["-D"]).arg(&data).args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ]));
        let hba = data.join("pg_hba.conf");
        // First match wins: ahead of initdb's password lines.
        let text = format!(
            "host replication postgres 127.0.0.1/32 trust\n{}",
            std::fs::read_to_string(&hba).expect("pg_hba.conf")
        );
        std::fs::write(&hba, text).expect("pg_hba.conf");
        let mut pg = Postgres {
            port: free_port(),
            dir,
            child: Server(None, "INT"),
        };
        pg.launch(&data);
        pg.sql("CREATE ROLE watchpost LOGIN PASSWORD 'wp-secret' IN ROLE pg_monitor");
        pg.sql("CREATE DATABASE shop");
        pg
    }

    /// A standby streaming from `primary` (pg_basebackup over loopback).
    pub fn standby_of(primary: &Postgres) -> Postgres {
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(as_pg_user("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-w",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-D",
            ])
            .arg(&data));
        let mut pg = Postgres {
            port: free_port(),
            dir,
            child: Server(None, "INT"),
        };
        pg.launch(&data);
        pg
    }

    fn launch(&mut self, data: &Path) {
        let socket_dir = self.dir.path();
        let child = as_pg_user("postgres")
            .arg("-D")
            .arg(data)
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(socket_dir)
            .args([
                "-c",
                "max_connections=30",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "fsync=off",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.child = Server(Some(ChildProcess(child)), "INT");
        let port = self.port;
        wait_until("postgres", Duration::from_secs(60), || {
            Command::new(pg_bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    }

    /// `psql` as the superuser on the `postgres` database, through the socket.
    fn psql(&self) -> Command {
        let mut c = Command::new(pg_bin("psql"));
        c.args(["-X", "-q", "-h"]).arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]);
        c
    }

    /// `psql` as the superuser: the unaligned, tuples-only output.
    pub fn sql(&self, sql: &str) -> String {
        run(self.psql().args(["-A", "-t", "-c", sql])).trim().to_string()
    }

    /// `psql` reading `script` from its input: each statement its own
    /// transaction (`-c` would run them all in one).
    pub fn script(&self, script: &str) {
        use std::io::Write;
        let mut child = self
            .psql()
            .args(["-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write the script");
        assert!(child.wait().expect("psql").success(), "psql script failed");
    }

    /// `psql` left running with `sql` (a transaction held open, a lock
    /// waited on); killed when dropped.
    pub fn session(&self, sql: &str) -> ChildProcess {
        let child = self
            .psql()
            .args(["-c", sql])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql");
        ChildProcess(child)
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        self.child.stop();
    }
}

/// A Redis server with a password (`wp-secret`) and `maxmemory` 64 MiB.
pub struct Redis {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Server,
}

impl Redis {
    /// Starts it; `replica_of` makes it a replica of that port.
    pub fn start(replica_of: Option<u16>) -> Redis {
        crate::peers_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--requirepass",
            "wp-secret",
            "--masterauth",
            "wp-secret",
            "--maxmemory",
            "64mb",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(p) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &p.to_string()]);
        }
        let child = cmd.spawn().expect("start redis-server");
        let r = Redis {
            port,
            _dir: dir,
            child: Server(Some(ChildProcess(child)), "TERM"),
        };
        wait_until("redis-server", Duration::from_secs(30), || {
            r.try_cli(&["PING"]).is_some_and(|o| o.trim() == "PONG")
        });
        r
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
                "-a",
                "wp-secret",
            ])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `redis-cli` with `args`; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// One field of `INFO`, as the server reports it.
    pub fn info(&self, field: &str) -> String {
        let info = self.cli(&["INFO"]);
        info.lines()
            .find_map(|l| {
                l.trim_end()
                    .strip_prefix(&format!("{field}:"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {field} in INFO"))
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        self.child.stop();
    }
}

/// nginx with `stub_status` at `/nginx_status` and a page at `/`.
pub struct Nginx {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Server,
}

impl Nginx {
    /// Starts it in the foreground under a temporary prefix.
    pub fn start() -> Nginx {
        crate::peers_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
             server {{\n  listen 127.0.0.1:{port};\n  location = /nginx_status {{ stub_status; }}\n\
             location / {{ return 200 \"ok\\n\"; }}\n }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let n = Nginx {
            port,
            _dir: dir,
            child: Server(Some(ChildProcess(child)), "TERM"),
        };
        wait_until("nginx", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        n
    }

    /// Stops it.
    pub fn stop(&mut self) {
        self.child.stop();
    }
}
