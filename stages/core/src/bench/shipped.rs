//! The NAS-Bench-201 table that ships with tenas: the gzip CSV in `stages/assets/nb201/`
//! (provenance and license in its README), embedded in the binary and checked on load against
//! the benchmark's known facts, so a fresh machine needs no download for it.
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::nb201::{parse_csv, Nb201Table};
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::hashing::hex;

const GZIP_CSV: &[u8] = include_bytes!("../../assets/nb201/nb201_accuracy.csv.gz");

/// How the shipped table is named in errors and logs.
pub const LABEL: &str = "<shipped NAS-Bench-201 table>";

/// Cells in the NAS-Bench-201 space (5 ops on 6 edges).
pub const CELLS: usize = 15_625;

/// Best 200-epoch test accuracy (%) per dataset, to two decimals, as the benchmark reports it.
pub const OPTIMA: [(Dataset, f64); 3] = [
    (Dataset::Cifar10, 94.37),
    (Dataset::Cifar100, 73.51),
    (Dataset::ImageNet16_120, 47.31),
];

/// The CSV text, unpacked.
pub fn csv_bytes() -> Result<Vec<u8>> {
    let mut csv = Vec::with_capacity(GZIP_CSV.len() * 6);
    GzDecoder::new(GZIP_CSV)
        .read_to_end(&mut csv)
        .map_err(|e| Error::io(format!("unpacking the {LABEL}"), e))?;
    Ok(csv)
}

/// sha256 (hex) of the unpacked CSV: the same as the file's when `TENAS_NB201` names it.
pub fn content_sha256() -> Result<String> {
    Ok(hex(&Sha256::digest(csv_bytes()?)))
}

/// Parses the table and checks it.
pub fn load() -> Result<Nb201Table> {
    let table = parse_csv(csv_bytes()?, Path::new(LABEL))?;
    check(&table)?;
    Ok(table)
}

/// Every cell once (the parser rejects repeats) and the known optima.
fn check(table: &Nb201Table) -> Result<()> {
    if table.len() != CELLS {
        return Err(Error::data(
            LABEL,
            format!("has {} cells, expected {CELLS}", table.len()),
        ));
    }
    for (dataset, optimum) in OPTIMA {
        let best = table.best(dataset);
        if (best - optimum).abs() >= 0.005 {
            return Err(Error::data(
                LABEL,
                format!(
                    "best {} accuracy is {best:.4}, expected {optimum:.2}",
                    dataset.name()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::file_sha256;
    use crate::test_support::test_data_root;

    #[test]
    fn the_shipped_table_has_every_cell_and_the_known_optima() {
        let table = load().unwrap();
        assert_eq!(table.len(), CELLS);
        let best = table
            .lookup("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
            .unwrap();
        assert_eq!((best.index, best.rank_cifar10), (6111, 1));
        let none = table
            .lookup("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
            .unwrap();
        assert_eq!(none.index, 1651);
    }

    #[test]
    fn the_shipped_table_is_the_shared_csv_byte_for_byte() {
        let shared = test_data_root().join("nb201/nb201_accuracy.csv");
        assert_eq!(csv_bytes().unwrap(), std::fs::read(&shared).unwrap());
        assert_eq!(content_sha256().unwrap(), file_sha256(&shared).unwrap());
    }

    #[test]
    fn a_table_without_the_known_optimum_fails_the_check() {
        let mut csv =
            String::from("arch_index,arch,cifar10_test,cifar100_test,imagenet16_120_test\n");
        for i in 0..CELLS {
            csv += &format!("{i},a{i},94.0,73.51,47.31\n");
        }
        let table = parse_csv(csv.into_bytes(), Path::new(LABEL)).unwrap();
        let err = check(&table).unwrap_err().to_string();
        assert!(
            err.contains("best cifar10 accuracy is 94.0000, expected 94.37"),
            "{err}"
        );

        let short = "arch_index,arch,cifar10_test,cifar100_test,imagenet16_120_test\n0,a,94.37,73.51,47.31\n";
        let table = parse_csv(short.as_bytes().to_vec(), Path::new(LABEL)).unwrap();
        let err = check(&table).unwrap_err().to_string();
        assert!(err.contains("has 1 cells, expected 15625"), "{err}");
    }
}
