//! Finding the microphone and the speaker by name, listing the devices, and turning audio
//! errors into messages that say what to do.

use anyhow::{anyhow, Result};
use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{Device, ErrorKind, Host, SupportedStreamConfig};

/// Which way a device is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    fn noun(self) -> &'static str {
        match self {
            Direction::Input => "microphone",
            Direction::Output => "speaker",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Direction::Input => "--input",
            Direction::Output => "--output",
        }
    }
}

/// A device to open, with the format voxd will use on it.
pub struct Chosen {
    pub device: Device,
    pub name: String,
    pub config: SupportedStreamConfig,
}

/// The device called `name` (or the system's default one), with its preferred format.
pub fn choose(host: &Host, direction: Direction, name: Option<&str>) -> Result<Chosen> {
    let _quiet = silence_alsa();
    let device = match name {
        Some(name) => find(host, name)
            .ok_or_else(|| anyhow!("no audio device named {name:?}. {}", list_hint()))?,
        None => match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        }
        .ok_or_else(|| {
            anyhow!(
                "this machine has no default {}. {}",
                direction.noun(),
                setup_hint(direction)
            )
        })?,
    };
    let name = device_name(&device);
    let config = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| explain(&e, direction, &name))?;
    Ok(Chosen {
        device,
        name,
        config,
    })
}

/// A device whose id (`alsa:pulse`), id without the host (`pulse`) or description matches.
fn find(host: &Host, name: &str) -> Option<Device> {
    host.devices().ok()?.find(|d| {
        let id = d.id().ok();
        id.as_ref()
            .is_some_and(|id| id.to_string() == name || id.id() == name)
            || d.description()
                .is_ok_and(|desc| desc.to_string().eq_ignore_ascii_case(name))
    })
}

fn device_name(device: &Device) -> String {
    device
        .id()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| device.to_string())
}

fn list_hint() -> &'static str {
    "Run `voxd mic --list-devices` to see the names voxd can use."
}

fn setup_hint(direction: Direction) -> String {
    format!(
        "Plug in a {} or start the sound server (PulseAudio or PipeWire) of your desktop \
         session, or choose a device with {}. {}",
        direction.noun(),
        direction.flag(),
        list_hint()
    )
}

/// Says what went wrong with a device and what to do about it.
pub fn explain(e: &cpal::Error, direction: Direction, name: &str) -> anyhow::Error {
    let what = direction.noun();
    let advice = match e.kind() {
        ErrorKind::DeviceBusy => format!(
            "it is busy: another program holds it. Close that program, or use the shared \
             \"default\" or \"pulse\" device of a running PulseAudio/PipeWire ({}). {}",
            direction.flag(),
            list_hint()
        ),
        ErrorKind::DeviceNotAvailable | ErrorKind::HostUnavailable => {
            format!("it is not available. {}", setup_hint(direction))
        }
        ErrorKind::UnsupportedConfig => format!(
            "it offers no format voxd can use. Choose another device with {}, or the \
             \"default\"/\"pulse\" device, which converts any format. {}",
            direction.flag(),
            list_hint()
        ),
        ErrorKind::PermissionDenied => {
            "permission denied: add your user to the \"audio\" group (then log in again)."
                .to_string()
        }
        _ => format!("it cannot be opened. {}", setup_hint(direction)),
    };
    anyhow!("cannot use the {what} {name:?}: {advice} ({e})")
}

/// Says that a device in use failed, and what to do about it.
pub fn failed(e: impl std::fmt::Display, direction: Direction, name: &str) -> anyhow::Error {
    anyhow!(
        "the {} {name:?} stopped working ({e}): it was unplugged, or its sound server \
         (PulseAudio, PipeWire) stopped. Reconnect it or restart the sound server, then run \
         voxd mic again; `voxd mic --list-devices` shows what is usable now.",
        direction.noun()
    )
}

/// The devices, one line each: usable ones with what they offer for recording and
/// playback, then those that cannot be opened now, with the reason.
pub fn list(host: &Host) -> Result<Vec<String>> {
    let _quiet = silence_alsa();
    let default_in = host.default_input_device().map(|d| device_name(&d));
    let default_out = host.default_output_device().map(|d| device_name(&d));
    let devices = host
        .devices()
        .map_err(|e| anyhow!("cannot list the audio devices: {e}"))?;
    let (mut usable, mut unusable) = (Vec::new(), Vec::new());
    for d in devices {
        let name = device_name(&d);
        let desc = d.description().map(|x| x.to_string()).unwrap_or_default();
        let (record, play) = (d.default_input_config(), d.default_output_config());
        if let (Err(e), Err(_)) = (&record, &play) {
            unusable.push(format!("  {name} ({desc}): {e}"));
            continue;
        }
        let mut marks = Vec::new();
        if default_in.as_deref() == Some(name.as_str()) {
            marks.push("default microphone");
        }
        if default_out.as_deref() == Some(name.as_str()) {
            marks.push("default speaker");
        }
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!(" [{}]", marks.join(", "))
        };
        usable.push(format!(
            "  {name}{marks}: {desc}\n      record: {}\n      play:   {}",
            offer(record),
            offer(play)
        ));
    }
    let mut lines = vec!["usable now:".to_string()];
    if usable.is_empty() {
        lines.push(
            "  none: plug in a microphone and speaker, or start the sound server (PulseAudio \
             or PipeWire) of your desktop session"
                .to_string(),
        );
    }
    lines.extend(usable);
    if !unusable.is_empty() {
        lines.push("cannot be opened now:".to_string());
        lines.extend(unusable);
    }
    Ok(lines)
}

fn offer(config: Result<SupportedStreamConfig, cpal::Error>) -> String {
    match config {
        Ok(c) => describe(&c),
        Err(e) => format!("unavailable ({e})"),
    }
}

/// "48000 Hz, 2 ch, f32".
pub fn describe(c: &SupportedStreamConfig) -> String {
    format!(
        "{} Hz, {} ch, {}",
        c.sample_rate(),
        c.channels(),
        c.sample_format()
    )
}

/// Keeps alsa-lib's error lines (it prints one per device it cannot open) off stderr on
/// this thread from now on; voxd reports what matters itself.
#[cfg(target_os = "linux")]
fn silence_alsa() -> Option<impl Sized> {
    alsa::Output::local_error_handler().ok()
}

#[cfg(not(target_os = "linux"))]
fn silence_alsa() -> Option<()> {
    None
}
