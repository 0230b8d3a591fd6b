//! A small tmpfs mounted for a test: a disk that fills. Only `std`, so
//! the crates' own unit tests include it too (`#[path]`), besides the
//! harness (`watchpost_tests::process::SmallDisk`).

use std::path::PathBuf;
use std::process::Command;

/// A small tmpfs mounted for a test (a disk that fills), unmounted when
/// dropped. Needs root; under `CI=true` a failure to mount fails the test,
/// elsewhere it is skipped with a message.
pub struct SmallDisk {
    /// Where it is mounted.
    pub path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`"8m"`) at `dir/disk`.
    pub fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        let path = dir.join("disk");
        std::fs::create_dir_all(&path).expect("mkdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot mount a tmpfs at {} (needs root): this test cannot run",
                path.display()
            );
            eprintln!("cannot mount a tmpfs (needs root): test not run");
            return None;
        }
        Some(SmallDisk { path })
    }

    /// Fills what is left with a file `filler`; returns its path.
    pub fn fill(&self) -> PathBuf {
        self.fill_leaving("filler", 0)
    }

    /// Fills what is left with a file `name`, then gives `keep` bytes of
    /// it back (a disk that is low, not yet full); returns its path.
    pub fn fill_leaving(&self, name: &str, keep: u64) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join(name);
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        // The last bytes a partial block left.
        while f.write_all(&[0u8; 512]).is_ok() {}
        if keep > 0 {
            let len = f.metadata().expect("filler size").len();
            f.set_len(len.saturating_sub(keep)).expect("give space back");
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
