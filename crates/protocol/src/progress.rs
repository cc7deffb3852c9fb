//! A running prediction's progress, read from its logs.
//!
//! Models report progress the way `tqdm` prints it, a line redrawn in place:
//! ` 75%|███████▌  | 3/4 [00:00<00:00, 15.38it/s]`. The official clients read the last such line
//! of `logs` (Python's `Prediction.progress`, JS's `parseProgressFromLogs`); so does
//! [`Progress::from_logs`], without a regular expression and without ever panicking.
//!
//! ```
//! use replicate_protocol::progress::Progress;
//! let logs = "Using seed: 1\n  0%|          | 0/4 [00:00<?, ?it/s]\n 75%|███████▌  | 3/4 [00:00<00:00, 15.38it/s]\n";
//! let p = Progress::from_logs(logs).unwrap();
//! assert_eq!((p.percentage, p.current, p.total), (75, 3, 4));
//! assert_eq!(p.fraction(), 0.75);
//! assert_eq!(Progress::from_logs("no bar here"), None);
//! ```

/// How far a prediction got, from the last progress bar in its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Progress {
    /// The percentage the bar shows, 0 to 100.
    pub percentage: u32,
    /// Steps done.
    pub current: u64,
    /// Steps in all.
    pub total: u64,
}

impl Progress {
    /// The last progress bar of `logs` (lines separated by `\n`, a bar redrawn with `\r`), or
    /// `None` when there is none.
    pub fn from_logs(logs: &str) -> Option<Progress> {
        logs.rsplit(['\n', '\r']).find_map(Progress::from_line)
    }

    /// One line of a `tqdm` bar: `{percentage}%|{bar}| {current}/{total}{rest}`, leading spaces
    /// and any label before the percentage allowed (`Sampling: 40%|...`).
    pub fn from_line(line: &str) -> Option<Progress> {
        let (before, after) = line.split_once("%|")?;
        let digits = before
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .filter(|d| !d.is_empty())?;
        let percentage: u32 = digits.parse().ok().filter(|p| *p <= 100)?;
        let counts = after.split_once('|')?.1.trim_start();
        let (current, rest) = counts.split_once('/')?;
        let current: u64 = current.trim().parse().ok()?;
        let total_digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let total: u64 = total_digits.parse().ok()?;
        Some(Progress {
            percentage,
            current,
            total,
        })
    }

    /// The share done, 0.0 to 1.0 (`current / total` when the total is known, else the
    /// percentage).
    pub fn fraction(&self) -> f64 {
        if self.total > 0 {
            (self.current as f64 / self.total as f64).clamp(0.0, 1.0)
        } else {
            f64::from(self.percentage) / 100.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_bar_of_real_log_shapes() {
        // fixtures/seed/get_response.json (flux-schnell): the last bar is the finished one.
        let seed = "Using seed: 62182\nrunning quantized prediction\n 0%| | 0/4 [00:00<?, ?it/s]\n 75%|███████▌ | 3/4 [00:00<00:00, 15.38it/s]\n100%|██████████| 4/4 [00:00<00:00, 13.43it/s]\nTotal safe images: 1 out of 1\n";
        assert_eq!(
            Progress::from_logs(seed),
            Some(Progress {
                percentage: 100,
                current: 4,
                total: 4
            })
        );
        // Redrawn in place with carriage returns.
        let redrawn = " 12%|█▏        | 6/50 [00:01<00:09,  4.71it/s]\r 14%|█▍        | 7/50 [00:01<00:09,  4.70it/s]";
        assert_eq!(Progress::from_logs(redrawn).map(|p| p.current), Some(7));
        // A label before the bar.
        assert_eq!(
            Progress::from_line("Sampling:  40%|████      | 20/50 [00:05<00:07]").map(|p| p.total),
            Some(50)
        );
        assert_eq!(Progress::from_logs(""), None);
        assert_eq!(Progress::from_logs("100% done | nope"), None);
        assert_eq!(Progress::from_line("250%|x| 1/2"), None);
    }
}
