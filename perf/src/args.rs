//! RocketMQ's benchmark options, as `producer.sh` and friends take them.
//!
//! RocketMQ's tools use commons-cli, whose short options may have several letters (`-ri`,
//! `-ch`, `-ak`) and whose boolean options take a value (`-k true`). clap has neither, so
//! [`normalize`] rewrites the multi-letter short options into their long names before clap
//! sees them, and booleans are declared as options with a `true`/`false` value.

/// Multi-letter short options of RocketMQ's tools → the long option clap knows.
const MULTI_LETTER: &[(&str, &str)] = &[
    ("-ri", "--reportInterval"),
    ("-ct", "--compressType"),
    ("-cl", "--compressLevel"),
    ("-ch", "--compressOverHowMuch"),
    ("-ak", "--accessKey"),
    ("-sk", "--secretKey"),
    ("-sr", "--sendRollbackRate"),
    ("-su", "--sendUnknownRate"),
    ("-cr", "--checkRollbackRate"),
    ("-cu", "--checkUnknownRate"),
];

/// Rewrites RocketMQ-style multi-letter short options (`-ri 5000`, `-ri=5000`) into long
/// options; everything else passes through unchanged.
pub fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            for (short, long) in MULTI_LETTER {
                if arg == *short {
                    return (*long).to_owned();
                }
                if let Some(value) = arg
                    .strip_prefix(short)
                    .and_then(|rest| rest.strip_prefix('='))
                {
                    return format!("{long}={value}");
                }
            }
            arg
        })
        .collect()
}

/// Parses `true`/`false` the way commons-cli + `Boolean.parseBoolean` would, but refuses
/// anything else instead of silently reading it as false.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_whole_multi_letter_options() {
        let args = [
            "ringmq-perf",
            "producer",
            "-ri",
            "5000",
            "-ch=100",
            "-w",
            "8",
            "-rix",
            "-t",
            "-ri",
        ];
        let out = normalize(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            [
                "ringmq-perf",
                "producer",
                "--reportInterval",
                "5000",
                "--compressOverHowMuch=100",
                "-w",
                "8",
                "-rix",
                "-t",
                "--reportInterval"
            ]
        );
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("yes").is_err());
    }
}
