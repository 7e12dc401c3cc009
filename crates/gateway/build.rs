//! Names the commit this build comes from, as `BRAMA_COMMIT`, for `brama --version` and the
//! `brama_build_info` metric: `BRAMA_COMMIT` from the environment when set (a build without
//! `.git`, such as a container image's), else what git says, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BRAMA_COMMIT");
    let commit = std::env::var("BRAMA_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BRAMA_COMMIT={}", commit.trim());
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then_some(())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Built again when HEAD moves: HEAD itself, the branch it names, or the packed refs.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{branch}");
        }
    }
    Some(commit)
}
