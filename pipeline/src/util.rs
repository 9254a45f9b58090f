//! Small helpers: UTC timestamps without a date crate, random ids, durable file writes.

use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};

/// `2024-05-01T12:00:00.123Z`
pub fn utc_timestamp(time: SystemTime) -> String {
    let (date, secs_of_day, millis) = split_time(time);
    format!(
        "{date}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// Sortable run id: `20240501T120000.123Z-1a2b3c`.
pub fn run_id(time: SystemTime) -> String {
    let (date, secs_of_day, millis) = split_time(time);
    format!(
        "{}T{:02}{:02}{:02}.{millis:03}Z-{}",
        date.replace('-', ""),
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        &random_hex()[..6]
    )
}

fn split_time(time: SystemTime) -> (String, u64, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        secs % 86_400,
        since.subsec_millis(),
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// 16 hex digits, unique per call within a process and random across processes.
pub fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Writes a file via a temporary sibling and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().expect("atomic write target has a parent");
    fs::create_dir_all(parent).at(parent)?;
    let tmp = parent.join(format!(".tmp-{}", random_hex()));
    let written = File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .at(&tmp)
        .and_then(|()| fs::rename(&tmp, path).at(path));
    if written.is_err() {
        // Nothing half-written is left behind.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    fsync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_and_sortable() {
        let t = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(utc_timestamp(t), "2024-05-01T12:00:00.123Z");
        assert!(run_id(t).starts_with("20240501T120000.123Z-"));
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_failed_atomic_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder, so the final rename fails.
        let target = dir.path().join("taken");
        fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"x").is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"]);
        write_atomic(&dir.path().join("file"), b"ok").unwrap();
        assert_eq!(fs::read(dir.path().join("file")).unwrap(), b"ok");
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_hex(), random_hex());
    }
}
