//! Slurm's own commands, run as processes: `sbatch` to submit, `squeue` to follow,
//! `scontrol` (or `sacct` where accounting is on) to learn how a job ended.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::executor::JobOptions;

use super::spec::JobDir;

/// An array element in the queue (pending, running, completing...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedJob {
    pub array_job: String,
    pub index: usize,
    pub name: String,
    pub state: String,
}

impl QueuedJob {
    pub fn id(&self) -> String {
        format!("{}_{}", self.array_job, self.index)
    }
}

/// How a job ended, as far as Slurm still knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ending {
    /// `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`... or
    /// `UNKNOWN` once Slurm has forgotten the job.
    pub state: String,
    pub exit_code: Option<String>,
    pub reason: Option<String>,
}

fn run(program: &str, args: &[String]) -> Result<String> {
    let output = Command::new(program).args(args).output().map_err(|e| {
        Error::Slurm(format!(
            "cannot run `{program}` ({e}); the slurm executor needs Slurm's commands on PATH"
        ))
    })?;
    if !output.status.success() {
        return Err(Error::Slurm(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Submits `count` array elements running `jobdir`'s script; returns the array job id.
pub(crate) fn submit(
    jobdir: &JobDir,
    name: &str,
    count: usize,
    options: &JobOptions,
) -> Result<String> {
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={name}"),
        format!("--array=0-{}", count - 1),
        format!("--output={}", jobdir.logs().join("%A_%a.log").display()),
    ];
    let mut flag = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            args.push(format!("--{name}={v}"));
        }
    };
    flag("partition", &options.partition);
    flag("account", &options.account);
    flag("time", &options.time);
    flag(
        "cpus-per-task",
        &options.cpus_per_task.map(|c| c.to_string()),
    );
    flag("mem", &options.mem);
    flag("gres", &options.gres);
    args.extend(options.extra_args.iter().flatten().cloned());
    args.push(jobdir.script_path().display().to_string());
    let out = run("sbatch", &args)?;
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = out.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Slurm(format!("sbatch printed no job id: {out:?}")));
    }
    Ok(id)
}

/// This user's array elements whose job name starts with `prefix`.
pub(crate) fn queue(prefix: &str) -> Result<Vec<QueuedJob>> {
    // `%i` is `<array job>_<index>` for array elements (`%a` prints `(null)` in 22.05).
    let args = ["--me", "-h", "-r", "-o", "%i|%j|%T"].map(str::to_string);
    Ok(parse_queue(&run("squeue", &args)?, prefix))
}

fn parse_queue(text: &str, prefix: &str) -> Vec<QueuedJob> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('|');
            let (array_job, index) = fields.next()?.split_once('_')?;
            let (array_job, index) = (array_job.to_string(), index.parse().ok()?);
            let name = fields.next()?.to_string();
            let state = fields.next()?.to_string();
            name.starts_with(prefix).then_some(QueuedJob {
                array_job,
                index,
                name,
                state,
            })
        })
        .collect()
}

/// How job `id` (`array_index`) ended: from accounting when the cluster keeps it, else from
/// the controller's memory of recent jobs.
pub(crate) fn ending(id: &str) -> Ending {
    let sacct = ["-j", id, "-n", "-P", "-X", "-o", "State,ExitCode,Reason"].map(str::to_string);
    if let Some(ending) = run("sacct", &sacct).ok().and_then(|t| parse_sacct(&t)) {
        return ending;
    }
    let scontrol = ["show", "job", id].map(str::to_string);
    run("scontrol", &scontrol)
        .ok()
        .and_then(|t| parse_scontrol(&t))
        .unwrap_or(Ending {
            state: "UNKNOWN".into(),
            exit_code: None,
            reason: None,
        })
}

fn parse_sacct(text: &str) -> Option<Ending> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut fields = line.split('|');
    let state = fields.next()?.split_whitespace().next()?.to_string();
    Some(Ending {
        state,
        exit_code: fields.next().map(str::to_string),
        reason: fields.next().map(str::to_string).filter(|r| r != "None"),
    })
}

fn parse_scontrol(text: &str) -> Option<Ending> {
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|token| token.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    Some(Ending {
        state: field("JobState")?,
        exit_code: field("ExitCode"),
        reason: field("Reason").filter(|r| r != "None"),
    })
}

/// The last `lines` lines of a log file, or a note that there is none.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(_) => format!("(no log at {})", path.display()),
    }
}

/// Whether Slurm's client commands answer here.
pub fn available() -> bool {
    Command::new("squeue")
        .args(["--me", "-h", "-o", "%i"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lines_are_array_elements_of_ours() {
        let text = "812_0|tenas-ab12|RUNNING\n812_3|tenas-ab12|PENDING\n9|bash|RUNNING\n813_1|other|PENDING\n";
        let jobs = parse_queue(text, "tenas-");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[1].id(), "812_3");
        assert_eq!(jobs[1].state, "PENDING");
    }

    #[test]
    fn endings_parse_from_scontrol_and_sacct() {
        let text = "JobId=815 ArrayJobId=812 ArrayTaskId=3 JobName=tenas-ab12\n   UserId=root(0) JobState=CANCELLED Reason=None Dependency=(null)\n   ExitCode=0:15\n";
        let e = parse_scontrol(text).unwrap();
        assert_eq!(e.state, "CANCELLED");
        assert_eq!(e.exit_code.as_deref(), Some("0:15"));
        assert_eq!(e.reason, None);
        let e = parse_sacct("CANCELLED by 0|0:15|None\n").unwrap();
        assert_eq!(e.state, "CANCELLED");
        assert_eq!(parse_sacct(""), None);
    }
}
