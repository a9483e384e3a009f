//! One GPU: a CUDA context and stream, the target architecture, and a per-device cache of
//! loaded modules and functions, keyed by [`Family`]. Creating a [`Gpu`] on a machine without
//! a driver, a device or NVRTC returns [`Error::CudaUnavailable`] / [`Error::NvrtcUnavailable`]
//! with the reason, never a panic (cudarc's loader panics when `libcuda` is missing, so the
//! library is probed first and the panic is caught as a second line of defence).

use crate::arch::Arch;
use crate::compiler::Compiler;
use crate::error::{DriverContext, Error, Result, panic_message};
use crate::family::Family;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::Ptx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A device ready to run this crate's kernels.
#[derive(Debug)]
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: Arch,
    name: String,
    compiler: Compiler,
    modules: Mutex<HashMap<Family, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
}

impl Gpu {
    /// Opens GPU `ordinal` with NVRTC from the environment.
    pub fn new(ordinal: usize) -> Result<Gpu> {
        let ctx = open_context(ordinal)?;
        let (major, minor) = ctx
            .compute_capability()
            .while_(|| format!("reading the compute capability of GPU {ordinal}"))?;
        let arch = Arch::for_capability(major, minor).ok_or_else(|| Error::CudaUnavailable {
            reason: format!(
                "GPU {ordinal} has compute capability {major}.{minor}; these kernels need 8.0+ \
                 (bf16 tensor cores)"
            ),
        })?;
        let name = ctx.name().unwrap_or_else(|_| format!("GPU {ordinal}"));
        let compiler = Compiler::from_env()?;
        let stream = ctx.default_stream();
        Ok(Gpu {
            ctx,
            stream,
            arch,
            name,
            compiler,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
        })
    }

    /// The stream every launcher uses.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The compilation target chosen for this device.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The device's marketing name (e.g. "NVIDIA H200").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of streaming multiprocessors (sizes grid-stride launches).
    pub fn sm_count(&self) -> Result<u32> {
        let n = self
            .ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .while_(|| "reading the SM count".into())?;
        Ok(n.max(1) as u32)
    }

    /// Waits for all launched work.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .while_(|| "synchronizing the stream".into())
    }

    /// The kernel `name` from `family`, compiling and loading the family on first use.
    pub fn function(&self, family: Family, name: &str) -> Result<CudaFunction> {
        if let Some(f) = lock(&self.functions).get(name) {
            return Ok(f.clone());
        }
        let module = self.module(family)?;
        let f = module
            .load_function(name)
            .while_(|| format!("looking up kernel {name} in module {family}"))?;
        lock(&self.functions).insert(name.to_string(), f.clone());
        Ok(f)
    }

    fn module(&self, family: Family) -> Result<Arc<CudaModule>> {
        if let Some(m) = lock(&self.modules).get(&family) {
            return Ok(m.clone());
        }
        let compiled = self.compiler.compile(family, self.arch)?;
        let image = match compiled.cubin {
            Some(cubin) => Ptx::from_binary(cubin),
            None => Ptx::from_src(compiled.ptx),
        };
        let module = self
            .ctx
            .load_module(image)
            .while_(|| format!("loading module {family} for {}", self.arch))?;
        lock(&self.modules).insert(family, module.clone());
        Ok(module)
    }
}

/// Locks a cache map; a poisoned lock only means another thread panicked mid-insert, and the
/// maps hold no invariant across entries, so the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_context(ordinal: usize) -> Result<Arc<CudaContext>> {
    // SAFETY: only tries to dlopen the driver library names cudarc knows.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::CudaUnavailable {
            reason: "libcuda.so not found: no NVIDIA driver on this machine".into(),
        });
    }
    match std::panic::catch_unwind(|| CudaContext::new(ordinal)) {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(e)) => Err(Error::CudaUnavailable {
            reason: format!("cannot open GPU {ordinal}: {e}"),
        }),
        Err(payload) => Err(Error::CudaUnavailable {
            reason: panic_message(payload.as_ref()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a driver this must be an error with a reason, not a panic; with one it opens.
    #[test]
    fn opening_never_panics() {
        match Gpu::new(0) {
            Ok(gpu) => println!("opened {} ({})", gpu.name(), gpu.arch()),
            Err(Error::CudaUnavailable { reason }) | Err(Error::NvrtcUnavailable { reason }) => {
                assert!(!reason.is_empty());
                println!("no GPU here: {reason}");
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
}
