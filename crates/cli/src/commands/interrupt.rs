//! Ctrl-C, SIGTERM and SIGHUP during `replicate run`: remove this process's partial downloads,
//! say which prediction is still running, exit 130.
//!
//! Downloads are streamed to `{dir}/.replicate-download-{pid}-{n}.part` and renamed when
//! complete ([`replicate_protocol::download::temp_file_name`]); a process killed in between
//! would leave the partial file behind. The handler runs on its own thread (the `ctrlc` crate),
//! removes the `.part` files of this process from the directory being written, and exits.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::exit::{self, INTERRUPTED};
use crate::output::note;

/// What the handler needs to know.
#[derive(Debug)]
struct State {
    /// The directory downloads are being written to.
    dir: Option<PathBuf>,
    /// The prediction created and not finished yet.
    prediction: Option<String>,
    /// Whether a create request may be on its way (its answer not read yet).
    creating: bool,
    /// `replicate batch`: its results file.
    batch: Option<PathBuf>,
}

static STATE: Mutex<State> = Mutex::new(State {
    dir: None,
    prediction: None,
    creating: false,
    batch: None,
});

/// Held while a whole record is being written (a batch's result line): the handler takes it
/// before it exits, so that an interrupt never cuts a record in two.
static WRITING: Mutex<()> = Mutex::new(());

/// Holds off the handler's exit until the guard is dropped.
pub fn hold() -> std::sync::MutexGuard<'static, ()> {
    WRITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Says that a batch writing its results to `out` is running: an interrupt then says how to
/// resume it.
pub fn set_batch(out: &Path) {
    STATE.lock().unwrap_or_else(PoisonError::into_inner).batch = Some(out.to_path_buf());
}

/// Installs the handler (once per process; a second call, or a platform without signals, is
/// ignored: the default behaviour stays).
pub fn install() {
    let _ = ctrlc::set_handler(on_interrupt);
}

/// Sets the directory downloads are written to (`None`: no download under way).
pub fn set_download_dir(dir: Option<&Path>) {
    STATE.lock().unwrap_or_else(PoisonError::into_inner).dir = dir.map(Path::to_path_buf);
}

/// Says that a create request is about to be sent (until [`set_running`]).
pub fn set_creating() {
    STATE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .creating = true;
}

/// Sets the prediction that exists and is not finished (`None`: none); the create is over.
pub fn set_running(id: Option<&str>) {
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    state.prediction = id.map(str::to_owned);
    state.creating = false;
}

fn on_interrupt() {
    let (dir, prediction, creating, batch) = {
        let state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        (
            state.dir.clone(),
            state.prediction.clone(),
            state.creating,
            state.batch.clone(),
        )
    };
    // A result line being written is finished first; the lock is held until the exit.
    let _writing = hold();
    let removed = dir.as_deref().map_or(0, remove_partial_downloads);
    let mut line = "interrupted".to_owned();
    if removed > 0 {
        line.push_str(&format!("; removed {removed} partial download(s)"));
    }
    note(&line);
    if let Some(out) = batch {
        note(&format!(
            "hint: no more creates; the results and the journal are consistent: run the same command with --resume to continue ({})",
            crate::text::safe_line(&out.display().to_string())
        ));
        note(
            "hint: predictions already created keep running on Replicate: --resume waits for them and does not create them again",
        );
    } else if let Some(id) = prediction {
        for hint in exit::resume_hints(&id) {
            note(&format!("hint: {hint}"));
        }
    } else if creating {
        note(
            "hint: the create request may have been sent: look for the prediction with `replicate prediction list` before running it again",
        );
    }
    std::process::exit(INTERRUPTED);
}

/// Removes this process's partial downloads (`.replicate-download-{pid}-*.part`) from `dir`;
/// returns how many were removed.
pub fn remove_partial_downloads(dir: &Path) -> usize {
    let prefix = format!(".replicate-download-{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".part")
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_process_partial_downloads_are_removed() {
        let dir =
            std::env::temp_dir().join(format!("replicate-cli-interrupt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ours = dir.join(replicate_protocol::download::temp_file_name(7));
        let other_pid = std::process::id().wrapping_add(1);
        let theirs = dir.join(format!(".replicate-download-{other_pid}-7.part"));
        let output = dir.join("out-0.png");
        for p in [&ours, &theirs, &output] {
            std::fs::write(p, b"x").expect("write");
        }
        assert_eq!(remove_partial_downloads(&dir), 1);
        assert!(!ours.exists() && theirs.exists() && output.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
