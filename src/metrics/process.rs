//! The daemon's own memory, read from `/proc/self/status` (Linux; `None` elsewhere).

/// Resident memory now and its peak since start, in bytes.
pub fn resident_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some((
        field_kb(&status, "VmRSS:")? * 1024,
        field_kb(&status, "VmHWM:")? * 1024,
    ))
}

/// A `Name:   123 kB` line of a status file, in kB.
fn field_kb(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kilobyte_fields() {
        let status = "Name:\tvoxd\nVmHWM:\t  812344 kB\nVmRSS:\t  700000 kB\n";
        assert_eq!(field_kb(status, "VmRSS:"), Some(700_000));
        assert_eq!(field_kb(status, "VmHWM:"), Some(812_344));
        assert_eq!(field_kb(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_resident_memory() {
        let (now, peak) = resident_bytes().expect("/proc/self/status");
        assert!(now > 0 && peak >= now, "{now} {peak}");
    }
}
