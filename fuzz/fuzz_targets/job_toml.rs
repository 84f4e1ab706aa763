//! The job file loader: TOML text, with the files it names read relative to a folder holding the example
//! jobs' shaders and inputs. A job that loads is then checked; nothing panics, hangs or runs out of memory.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use idlegrid::job::check;
use idlegrid::{Job, JobLimits};
use libfuzzer_sys::fuzz_target;

/// A folder with every file of the example jobs (their names do not clash), filled once per process;
/// one fixed folder, so that runs do not leave copies behind.
fn folder() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/jobs");
        let folder = std::env::temp_dir().join("idlegrid-fuzz-job-files");
        std::fs::create_dir_all(&folder).expect("temporary folder");
        for job in std::fs::read_dir(&examples)
            .expect("examples/jobs")
            .flatten()
        {
            for file in std::fs::read_dir(job.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if file.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = std::fs::copy(file.path(), folder.join(file.file_name()));
                }
            }
        }
        folder
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = JobLimits::default();
    match Job::from_toml(text, folder(), "job.toml", &limits) {
        Ok(job) => {
            let wire = job.to_wire();
            assert_eq!(Job::from_wire(&wire).expect("decodes").to_wire(), wire);
            let _ = check(&job, &limits).map_err(|e| e.to_string());
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
