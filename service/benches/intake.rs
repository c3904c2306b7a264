//! Gateway intake, the part before storage: topic check, envelope parse, secp256k1 signature
//! verification, replay window and payload validation ([`gridshare::ingest::Ingest::handle`]),
//! for telemetry envelopes carrying 1, 10 and 64 samples: `verify_*` on one thread, `pipeline_*`
//! through [`gridshare::ingest::Pipeline`] as the MQTT intake runs it (checks on a two-worker
//! runtime, replay checks in order). Throughput is in readings (samples).
//! Storage's own rate is measured by `cargo bench -p gridshare-storage --bench ingest`.
//!
//! `cargo bench -p gridshare --bench intake`

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gridshare::ingest::{Ingest, Pipeline};
use gridshare_domain::envelope::{FreshnessPolicy, GatewayKey, ReplayWindow, Verifier};
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Message, Quality, Telemetry, TelemetrySample};
use gridshare_domain::{DeviceId, GatewayId, Timestamp, W, Wh};

const NOW: Timestamp = Timestamp(1_764_064_800_000);
const ENVELOPES: u64 = 200;

fn envelopes(key: &GatewayKey, samples: usize) -> Vec<Vec<u8>> {
    (1..=ENVELOPES)
        .map(|seq| {
            let msg = Message::Telemetry(Telemetry {
                samples: (0..samples)
                    .map(|i| TelemetrySample {
                        device: DeviceId::new(format!("dev{i}")).unwrap(),
                        kind: DeviceKind::GridMeter,
                        at: NOW,
                        power_w: Some(W(1_234)),
                        energy_in_wh: Some(Wh(5_000 + seq as i64)),
                        energy_out_wh: Some(Wh(7)),
                        soc_permille: None,
                        status: DeviceStatus::Ok,
                        quality: Quality::Good,
                    })
                    .collect(),
            });
            serde_json::to_vec(&key.seal(GatewayId(1), seq, NOW, &msg).unwrap()).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = GatewayKey::from_bytes(&[7u8; 32]).unwrap();
    let topic = topics::topic(GatewayId(1), Channel::Telemetry);
    let mut g = c.benchmark_group("intake");
    g.sample_size(10);
    for samples in [1usize, 10, 64] {
        let batch = envelopes(&key, samples);
        g.throughput(Throughput::Elements(ENVELOPES * samples as u64));
        g.bench_function(format!("verify_{samples}_samples_per_envelope"), |b| {
            b.iter_batched(
                || {
                    let mut v = Verifier::new(FreshnessPolicy::default());
                    v.register(GatewayId(1), key.public(), ReplayWindow::default());
                    Ingest::new(v)
                },
                |mut ingest| {
                    for e in &batch {
                        ingest.handle(&topic, e, NOW).unwrap();
                    }
                },
                BatchSize::LargeInput,
            );
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let publishes: Vec<(String, Vec<u8>)> = batch.iter().map(|e| (topic.clone(), e.clone())).collect();
        g.bench_function(format!("pipeline_{samples}_samples_per_envelope"), |b| {
            b.iter_batched(
                || {
                    let mut v = Verifier::new(FreshnessPolicy::default());
                    v.register(GatewayId(1), key.public(), ReplayWindow::default());
                    (Ingest::new(v), publishes.clone())
                },
                |(mut ingest, publishes)| {
                    runtime.block_on(async {
                        let checker = ingest.checker();
                        let mut pipeline = Pipeline::new(256);
                        let mut accepted = 0;
                        for p in publishes {
                            while pipeline.is_full() {
                                let (_, staged) = pipeline.next().await.unwrap();
                                ingest.accept(staged.unwrap()).unwrap();
                                accepted += 1;
                            }
                            pipeline.push(&checker, NOW, p);
                        }
                        while let Some((_, staged)) = pipeline.next().await {
                            ingest.accept(staged.unwrap()).unwrap();
                            accepted += 1;
                        }
                        assert_eq!(accepted, ENVELOPES);
                    })
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
