//! The kernels a `kernel` node calls: [`Kernels`], the host's choice of backend, made once per
//! host, in front of the native CPU kernels (`native.rs`) and, with the `cuda` feature, the CUDA
//! detection (`gpu.rs`).
//!
//! Invariants:
//! - Every kernel has a native implementation, and a host without a GPU (or without the `cuda`
//!   feature) serves every kernel with it; a missing driver or device is a reason recorded in
//!   [`Kernels::backend`], never an error or a panic.
//! - Today the native kernels serve every call on every backend: the CUDA backend detects and
//!   names the device, but runs nothing on it (`gpu.rs` says why). A GPU kernel, once added,
//!   must agree with the native one within the tolerance in docs/graph-format.md ("Effects").

use std::time::Instant;

use graphjit_value::Tensor;

pub(crate) use native::work;

/// Why a kernel call gave no tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelError {
    /// The arguments do not fit the kernel (shapes, arity, unknown name).
    Bad(String),
    /// The run's deadline passed while the kernel ran (it checks the clock between blocks).
    Deadline,
}

#[cfg(feature = "cuda")]
mod gpu;
mod native;

/// The host's kernels and the backend serving them.
#[derive(Debug, Clone)]
pub(crate) struct Kernels {
    /// What serves the kernels, and why: see [`Kernels::backend`].
    backend: String,
}

impl Default for Kernels {
    /// Native kernels, without looking for a GPU (what `Services::default()` gets).
    fn default() -> Kernels {
        Kernels::native("CUDA not probed")
    }
}

impl Kernels {
    /// The kernels for a new host: with the `cuda` feature, CUDA device 0 with a cuBLAS handle
    /// when the driver, a device and cuBLAS are present (probed once per process), else the
    /// native kernels with the reason.
    pub(crate) fn detect() -> Kernels {
        #[cfg(feature = "cuda")]
        return match gpu::detect() {
            Ok(device) => Kernels {
                backend: format!(
                    "cuda: {device} (on GPU: none; matmul, softmax and conv2d run natively: \
                     cudarc's cuBLAS sgemm is marked unsafe, which the host denies)"
                ),
            },
            Err(why) => Kernels::native(&why),
        };
        #[cfg(not(feature = "cuda"))]
        Kernels::native("built without the `cuda` feature")
    }

    fn native(why: &str) -> Kernels {
        Kernels {
            backend: format!("native ({why})"),
        }
    }

    /// What serves the kernels: `native (<why no GPU>)`, or `cuda: <device name> (on GPU:
    /// <kernels run on the device, or none>; …)`.
    pub(crate) fn backend(&self) -> &str {
        &self.backend
    }

    /// Runs kernel `name` on `args`: the native kernel, on every backend for now (see the
    /// module doc). Shapes are checked; a bad call is an `Err` with the reason, and a kernel
    /// still running at `deadline` stops within a block of work (~2 ms).
    pub(crate) fn run(
        &self,
        name: &str,
        args: &[Tensor],
        deadline: Instant,
    ) -> Result<Tensor, KernelError> {
        native::run(name, args, deadline)
    }
}

/// What the native kernels assume (the assumption inventory).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] = &[
    crate::assumptions::Assumption {
        component: "kernels",
        assumption: "ndarray/matrixmultiply compute matmul correctly to f32 rounding; shapes are \
                 checked again in the host",
        failure_mode: "a kernel's answer differs from the guest op by more than rounding",
        mitigation: "kernel answers are shape-checked on both sides; tests compare with known values",
        properties: &["Footprint!NoUndeclaredEffect"],
    },
];

#[cfg(test)]
mod tests;
