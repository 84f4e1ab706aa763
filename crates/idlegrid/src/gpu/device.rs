//! One wgpu device and what lives as long as it: the shader modules and pipelines compiled on it, and
//! the errors it reports. A lost device is replaced by a fresh one for the next job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::job::{BindingKind, JobError, ShaderInterface};

/// A compiled shader: the module, its one bind group layout, and a pipeline per entry point used so far.
pub(super) struct CompiledShader {
    pub bind_group_layout: wgpu::BindGroupLayout,
    layout: wgpu::PipelineLayout,
    module: wgpu::ShaderModule,
    pipelines: HashMap<String, wgpu::ComputePipeline>,
}

pub(super) struct GpuDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub timestamps: bool,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Vec<JobError>>>,
    shaders: HashMap<blake3::Hash, CompiledShader>,
}

impl GpuDevice {
    pub fn open(adapter: &wgpu::Adapter, limits: wgpu::Limits) -> Result<GpuDevice, JobError> {
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let required_features = if timestamps {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("idlegrid job device"),
            required_features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&descriptor)).map_err(|e| {
                JobError::Device {
                    adapter: adapter.get_info().name,
                    message: e.to_string(),
                }
            })?;
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            tracing::warn!(?reason, %message, "GPU device lost");
            if let Ok(mut lost) = lost_flag.lock() {
                *lost = Some(if message.is_empty() {
                    format!("{reason:?}")
                } else {
                    message
                });
            }
        });
        // Without a handler wgpu panics on errors outside a scope; keep them for the job's error instead.
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |error| {
            tracing::warn!(%error, "uncaptured GPU error");
            if let Ok(mut sink) = sink.lock() {
                sink.push(job_error(&error));
            }
        }));
        Ok(GpuDevice {
            device,
            queue,
            limits,
            timestamps,
            lost,
            uncaptured,
            shaders: HashMap::new(),
        })
    }

    /// Why the device was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Errors reported outside any error scope since the last call.
    pub fn take_uncaptured(&self) -> Vec<JobError> {
        self.uncaptured
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// Drops a shader whose job failed, so that a broken compilation is not reused.
    pub fn forget(&mut self, hash: blake3::Hash) {
        self.shaders.remove(&hash);
    }

    /// The compiled shader for `source`, compiling it only the first time; `true` when it was compiled now.
    pub fn shader(
        &mut self,
        hash: blake3::Hash,
        source: &str,
        interface: &ShaderInterface,
    ) -> (&mut CompiledShader, bool) {
        let mut compiled_now = false;
        let shader = self.shaders.entry(hash).or_insert_with(|| {
            compiled_now = true;
            compile(&self.device, source, interface)
        });
        (shader, compiled_now)
    }
}

/// A wgpu error as the job's failure, of the kind that says whose fault it is (see [`JobError`]).
pub(super) fn job_error(error: &wgpu::Error) -> JobError {
    let message = crate::protocol::one_line(&error.to_string());
    match error {
        wgpu::Error::OutOfMemory { .. } => JobError::OutOfMemory(message),
        wgpu::Error::Validation { .. } => JobError::Validation(message),
        wgpu::Error::Internal { .. } => JobError::Gpu(message),
    }
}

impl CompiledShader {
    /// The pipeline for `entry`, building it only the first time; `true` when it was built now.
    pub fn pipeline(
        &mut self,
        device: &wgpu::Device,
        entry: &str,
    ) -> (&wgpu::ComputePipeline, bool) {
        let mut built_now = false;
        let pipeline = self.pipelines.entry(entry.to_owned()).or_insert_with(|| {
            built_now = true;
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&self.layout),
                module: &self.module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        });
        (pipeline, built_now)
    }
}

fn compile(device: &wgpu::Device, source: &str, interface: &ShaderInterface) -> CompiledShader {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("job shader"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    // One explicit layout from every binding the module declares, so that all passes share one bind group
    // even when an entry point uses only some of the buffers.
    let entries: Vec<_> = interface
        .bindings
        .iter()
        .map(|b| wgpu::BindGroupLayoutEntry {
            binding: b.binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match b.kind {
                    BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                    BindingKind::Storage { read_only } => {
                        wgpu::BufferBindingType::Storage { read_only }
                    }
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("job buffers"),
        entries: &entries,
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("job"),
        bind_group_layouts: &[Some(&bind_group_layout)],
        immediate_size: 0,
    });
    CompiledShader {
        bind_group_layout,
        layout,
        module,
        pipelines: HashMap::new(),
    }
}
