//! `voxd mic --save DIR`: both sides of the conversation as WAV files on one timeline
//! (caller.wav: the microphone at 16 kHz; assistant.wav: voxd at the speaker's rate, silent
//! between replies) and transcript.txt, one line per utterance.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use hound::{SampleFormat, WavSpec, WavWriter};

type Wav = WavWriter<BufWriter<File>>;

pub struct Recording {
    started: Instant,
    caller: Wav,
    assistant: Wav,
    assistant_rate: u32,
    assistant_len: u64,
    transcript: BufWriter<File>,
}

impl Recording {
    /// Creates DIR (if needed) and the three files in it.
    pub fn create(dir: &Path, caller_rate: u32, assistant_rate: u32) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let wav = |name: &str, rate: u32| -> Result<Wav> {
            let path = dir.join(name);
            let spec = WavSpec {
                channels: 1,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: SampleFormat::Int,
            };
            WavWriter::create(&path, spec)
                .with_context(|| format!("cannot write {}", path.display()))
        };
        let path = dir.join("transcript.txt");
        let transcript =
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            started: Instant::now(),
            caller: wav("caller.wav", caller_rate)?,
            assistant: wav("assistant.wav", assistant_rate)?,
            assistant_rate,
            assistant_len: 0,
            transcript: BufWriter::new(transcript),
        })
    }

    /// What the microphone heard (continuous, from the start).
    pub fn caller(&mut self, samples: &[i16]) -> Result<()> {
        for &s in samples {
            self.caller.write_sample(s)?;
        }
        Ok(())
    }

    /// What voxd played, placed at the time it was played.
    pub fn assistant(&mut self, samples: &[i16]) -> Result<()> {
        let due = (self.started.elapsed().as_secs_f64() * f64::from(self.assistant_rate)) as u64;
        while self.assistant_len < due {
            self.assistant.write_sample(0i16)?;
            self.assistant_len += 1;
        }
        for &s in samples {
            self.assistant.write_sample(s)?;
        }
        self.assistant_len += samples.len() as u64;
        Ok(())
    }

    /// One transcript line: seconds since the start, who, what.
    pub fn line(&mut self, who: &str, text: &str) -> Result<()> {
        let at = self.started.elapsed().as_secs_f64();
        writeln!(self.transcript, "[{at:7.2} s] {who}: {text}")?;
        self.transcript.flush()?;
        Ok(())
    }

    /// Completes the WAV headers.
    pub fn finish(self) -> Result<()> {
        self.caller.finalize()?;
        self.assistant.finalize()?;
        Ok(())
    }
}
