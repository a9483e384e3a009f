//! Where tensors live and ops run: `cpu`, `cuda`, or `auto` (CUDA when present, else CPU).
//!
//! The CUDA arm belongs to the kernels crate (`negopt-kernels`). Until the kernels' backend is
//! wired to the op interface, `cuda` probes the GPU (driver, device, NVRTC) and returns
//! [`EngineError::DeviceUnavailable`] with what it found, and `auto` runs on the CPU and logs
//! why, without opening a GPU it could not use.

use std::fmt;
use std::str::FromStr;

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use crate::error::{EngineError, Result};

/// A device named on the command line (`--device cpu|cuda|auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU backend (f32, `gemm` + rayon threads).
    Cpu,
    /// The CUDA backend (probed; not wired yet).
    Cuda,
    /// CUDA when available, otherwise CPU.
    #[default]
    Auto,
}

impl FromStr for Device {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            "auto" => Ok(Device::Auto),
            other => Err(EngineError::input(
                format!("device `{other}`"),
                "unknown device\nhelp: use cpu, cuda or auto",
            )),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Auto => "auto",
        })
    }
}

impl Device {
    /// The backend that runs ops for this device.
    pub fn backend(self) -> Result<Box<dyn Backend>> {
        match self {
            Device::Cpu => Ok(Box::new(CpuBackend::new())),
            Device::Auto => {
                tracing::info!(
                    reason = "the CUDA backend is not wired into the engine yet",
                    "running on the CPU"
                );
                Ok(Box::new(CpuBackend::new()))
            }
            Device::Cuda => Err(EngineError::DeviceUnavailable {
                device: "cuda".into(),
                reason: format!("{}\nhelp: use --device cpu (or auto)", cuda_finding()),
            }),
        }
    }
}

/// What probing GPU 0 found, as the reason the CUDA backend cannot run here.
fn cuda_finding() -> String {
    match negopt_kernels::Gpu::new(0) {
        Ok(gpu) => format!(
            "found {} ({}), but the CUDA backend of the op interface is not wired into the \
             engine yet",
            gpu.name(),
            gpu.arch()
        ),
        Err(e) => format!("no usable GPU: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_devices() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("auto".parse::<Device>().unwrap(), Device::Auto);
        let err = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(err.contains("tpu") && err.contains("help"), "{err}");
    }

    #[test]
    fn cuda_is_a_clear_error_and_auto_is_cpu() {
        let err = Device::Cuda.backend().err().unwrap().to_string();
        assert!(
            err.contains("cuda") && err.contains("--device cpu"),
            "{err}"
        );
        // The reason is what probing the GPU found: no driver/device/NVRTC, or a GPU that the
        // unwired backend cannot use yet.
        assert!(
            err.contains("no usable GPU: ") || err.contains("not wired into the engine"),
            "{err}"
        );
        assert_eq!(Device::Auto.backend().unwrap().name(), "cpu");
    }
}
