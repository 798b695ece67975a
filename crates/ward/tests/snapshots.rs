//! CLI snapshot tests of the `ward` binary with `trycmd`: one case per file in `tests/cmd/`,
//! exact stdout, stderr and exit status. `*.toml` cases run one command; `*.trycmd` cases run a
//! sequence of `$ ward …` commands in one sandbox (copied from the `*.in` directory beside them).
//! Regenerate after an intended change with `TRYCMD=overwrite cargo test -p ward --test snapshots`.

#[test]
fn cli() {
    trycmd::TestCases::new()
        .case("tests/cmd/*.toml")
        .case("tests/cmd/*.trycmd");
}
