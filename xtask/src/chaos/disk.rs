//! A small tmpfs of the harness's own for the SQLite scenarios: filled to the last byte for a full disk, or
//! mounted read-only; unmounted when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The size of the file system: room for the database and its journal, little enough to fill in an instant.
const SIZE: &str = "size=16m";

const FILLER: &str = "filler";

#[derive(Debug)]
pub(crate) struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a fresh tmpfs at `dir`, read-only if `read_only`.
    pub(crate) fn mount(dir: &Path, read_only: bool) -> anyhow::Result<Self> {
        // A mount left behind by an interrupted run goes first.
        let _ = Command::new("umount").arg("-l").arg(dir).output();
        std::fs::create_dir_all(dir)?;
        let options = if read_only { format!("ro,{SIZE}") } else { SIZE.to_owned() };
        let output = Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(dir).output()?;
        anyhow::ensure!(
            output.status.success(),
            "cannot mount a tmpfs at {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes a read-only mount writable.
    pub(crate) fn make_writable(&self) -> anyhow::Result<()> {
        let output = Command::new("mount").args(["-o", &format!("remount,rw,{SIZE}")]).arg(&self.dir).output()?;
        anyhow::ensure!(output.status.success(), "cannot remount {} writable", self.dir.display());
        Ok(())
    }

    /// Writes a filler file until no byte is left; returns its size.
    pub(crate) fn fill(&self) -> anyhow::Result<u64> {
        let path = self.dir.join(FILLER);
        let mut file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut written = 0;
        // Large blocks first, then smaller ones for the last pages.
        for block in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let zeros = vec![0u8; block];
            while file.write_all(&zeros).is_ok() {
                written += block as u64;
            }
        }
        let _ = file.flush();
        Ok(written)
    }

    /// Removes the filler: the space is back.
    pub(crate) fn free(&self) -> anyhow::Result<()> {
        std::fs::remove_file(self.dir.join(FILLER)).context("cannot remove the filler")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.dir).output().is_ok_and(|output| output.status.success());
        if !unmounted {
            // Something still holds a file there: detach now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
        }
    }
}
