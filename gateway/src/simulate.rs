//! A Modbus TCP device simulator: serves device profiles (one unit id each, like a Modbus
//! gateway with several devices behind it) with values from simple physical models, accepts
//! writes to the profiles' writable points within their limits, and injects faults on demand.
//!
//! Models, advanced by [`Simulator::step`] (the server task calls it every second):
//! - **PV inverter**: `peak × daylight(t) × cloud(t)`; daylight is a half sine from 06:00 to
//!   18:00 UTC, clouds a slow deterministic noise between 55 % and 100 %. Counts energy.
//! - **grid meter**: household load (a base with morning and evening peaks) minus the
//!   home's PV and battery discharge, plus EV charging; positive = import. Counts import and export.
//! - **battery**: follows its power setpoint within ±5 kW, stops charging at 100 % and
//!   discharging at 5 %; state of charge integrates power (10 kWh capacity).
//! - **EV charger**: charges three-phase at its current limit (230 V per phase) while a car is
//!   plugged in (16:00–07:00); counts session energy.
//!
//! Faults ([`Fault`]): no answer (the client times out), a Modbus exception on every request,
//! stuck values (registers stop changing), or refused connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gridshare_domain::wire::DeviceKind;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use crate::profile::{Point, Profile, Quantity, Table, WriteFunction};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Never answer.
    Timeout,
    /// Answer every request with this exception.
    Exception(ExceptionCode),
    /// Keep the registers as they are.
    Stuck,
    /// Close every new connection at once.
    Disconnect,
}

/// The physical state of one simulated device.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    kind: DeviceKind,
    power_w: f64,
    energy_in_wh: f64,
    energy_out_wh: f64,
    soc_permille: f64,
    setpoint_w: f64,
    current_limit_a: f64,
    peak_w: f64,
}

/// One simulated device: a unit id, its profile, its state and its registers.
#[derive(Debug)]
struct Device {
    profile: Profile,
    model: Model,
    registers: HashMap<(Table, u16), u16>,
}

#[derive(Debug, Default)]
struct State {
    devices: HashMap<u8, Device>,
    /// Units that answer every request with this exception (a device whose Modbus is there but
    /// which serves nothing the gateway asks, as installers meet them).
    exception_only: HashMap<u8, ExceptionCode>,
    fault: Fault,
    /// Seconds since the epoch of the simulated clock.
    clock_s: f64,
}

/// The simulator: devices by unit id, shared by the server and its controller.
#[derive(Debug, Clone, Default)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

fn daylight(t_s: f64) -> f64 {
    let hour = (t_s / 3600.0).rem_euclid(24.0);
    if (6.0..18.0).contains(&hour) {
        (std::f64::consts::PI * (hour - 6.0) / 12.0).sin()
    } else {
        0.0
    }
}

fn cloud(t_s: f64) -> f64 {
    // slow, deterministic: two incommensurate waves
    let x = t_s / 600.0;
    0.775 + 0.225 * (0.6 * (x * 1.3).sin() + 0.4 * (x * 3.7 + 1.0).sin())
}

fn household_w(t_s: f64) -> f64 {
    let hour = (t_s / 3600.0).rem_euclid(24.0);
    let bump = |centre: f64, height: f64| height * (-((hour - centre) / 1.5).powi(2)).exp();
    350.0 + bump(7.5, 900.0) + bump(19.0, 1_400.0) + 60.0 * (t_s / 97.0).sin()
}

impl Model {
    fn new(kind: DeviceKind) -> Self {
        Self {
            kind,
            power_w: 0.0,
            energy_in_wh: 0.0,
            energy_out_wh: 0.0,
            soc_permille: 500.0,
            setpoint_w: 0.0,
            current_limit_a: 16.0,
            peak_w: 5_000.0,
        }
    }
}

impl Simulator {
    /// An empty simulator starting its clock at `clock_s` (seconds since the epoch).
    pub fn new(clock_s: f64) -> Self {
        let sim = Self::default();
        sim.lock().clock_s = clock_s;
        sim
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic elsewhere leaves plain numbers behind: carry on with them
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a device at `unit`, replacing one already there.
    pub fn add(&self, unit: u8, profile: Profile) {
        self.lock().exception_only.remove(&unit);
        let mut device = Device {
            model: Model::new(profile.device.kind),
            profile,
            registers: HashMap::new(),
        };
        sunspec_header(&mut device, unit);
        for p in device.profile.points.clone() {
            if let Some(w) = p.writable {
                let initial = match p.quantity {
                    Some(Quantity::EvCurrentLimitA) => device.model.current_limit_a,
                    Some(Quantity::ExportLimitW) => w.max,
                    _ => 0.0_f64.clamp(w.min, w.max),
                };
                store(&mut device, &p, initial);
            }
        }
        publish(&mut device);
        self.lock().devices.insert(unit, device);
    }

    /// A unit that answers every request with `code`, replacing a device there.
    pub fn add_exception_only(&self, unit: u8, code: ExceptionCode) {
        let mut st = self.lock();
        st.devices.remove(&unit);
        st.exception_only.insert(unit, code);
    }

    /// Injects a fault (or [`Fault::None`] to clear it).
    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// The current fault.
    pub fn fault(&self) -> Fault {
        self.lock().fault
    }

    /// Advances every device by `dt` seconds of simulated time.
    pub fn step(&self, dt: f64) {
        let mut st = self.lock();
        st.clock_s += dt;
        let t = st.clock_s;
        let stuck = st.fault == Fault::Stuck;
        // the home's PV and battery feed its grid meter
        let mut pv_w = 0.0;
        let mut battery_w = 0.0;
        let mut ev_w = 0.0;
        for d in st.devices.values_mut() {
            let m = &mut d.model;
            match m.kind {
                DeviceKind::PvInverter => {
                    m.power_w = m.peak_w * daylight(t) * cloud(t);
                    m.energy_in_wh += m.power_w * dt / 3_600.0;
                    pv_w += m.power_w;
                }
                DeviceKind::Battery => {
                    let mut p = m.setpoint_w.clamp(-5_000.0, 5_000.0);
                    if (p > 0.0 && m.soc_permille >= 1_000.0) || (p < 0.0 && m.soc_permille <= 50.0) {
                        p = 0.0;
                    }
                    m.power_w = p;
                    let wh = p * dt / 3_600.0;
                    let capacity = d.profile.device.capacity_wh.filter(|c| *c > 0.0).unwrap_or(10_000.0);
                    m.soc_permille = (m.soc_permille + wh / capacity * 1_000.0).clamp(0.0, 1_000.0);
                    if wh > 0.0 {
                        m.energy_in_wh += wh;
                    } else {
                        m.energy_out_wh -= wh;
                    }
                    battery_w += p;
                }
                DeviceKind::EvCharger => {
                    let hour = (t / 3_600.0).rem_euclid(24.0);
                    let plugged = !(7.0..16.0).contains(&hour);
                    m.power_w = if plugged && m.current_limit_a >= 6.0 {
                        m.current_limit_a * 230.0 * 3.0
                    } else {
                        0.0
                    };
                    m.energy_in_wh += m.power_w * dt / 3_600.0;
                    ev_w += m.power_w;
                }
                DeviceKind::GridMeter | DeviceKind::SubMeter => {}
            }
        }
        for d in st.devices.values_mut() {
            let m = &mut d.model;
            if m.kind == DeviceKind::GridMeter {
                m.power_w = household_w(t) + ev_w + battery_w - pv_w;
                let wh = m.power_w * dt / 3_600.0;
                if wh > 0.0 {
                    m.energy_in_wh += wh;
                } else {
                    m.energy_out_wh -= wh;
                }
            }
            if !stuck {
                publish(d);
            }
        }
    }

    /// Every device's energy counters (Wh in, Wh out) by unit: what a real meter keeps through
    /// a power cut, for a simulation that stops and starts again to carry on from.
    pub fn energy_counters(&self) -> std::collections::BTreeMap<u8, (f64, f64)> {
        self.lock()
            .devices
            .iter()
            .map(|(unit, d)| (*unit, (d.model.energy_in_wh, d.model.energy_out_wh)))
            .collect()
    }

    /// Sets the energy counters of the devices at the units given (others are left alone; a
    /// negative or non-finite count is taken as zero).
    pub fn restore_energy_counters(&self, counters: &std::collections::BTreeMap<u8, (f64, f64)>) {
        let sane = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        let mut st = self.lock();
        for (unit, (energy_in, energy_out)) in counters {
            if let Some(d) = st.devices.get_mut(unit) {
                d.model.energy_in_wh = sane(*energy_in);
                d.model.energy_out_wh = sane(*energy_out);
                publish(d);
            }
        }
    }

    /// A device's current power, W (for tests and the demo's display).
    pub fn power_w(&self, unit: u8) -> Option<f64> {
        self.lock().devices.get(&unit).map(|d| d.model.power_w)
    }

    fn answer(&self, req: SlaveRequest<'static>) -> Result<Option<Response>, ExceptionCode> {
        let mut st = self.lock();
        match st.fault {
            Fault::Timeout => return Ok(None),
            Fault::Exception(code) => return Err(code),
            Fault::None | Fault::Stuck | Fault::Disconnect => {}
        }
        if let Some(&code) = st.exception_only.get(&req.slave) {
            return Err(code);
        }
        let device = st
            .devices
            .get_mut(&req.slave)
            .ok_or(ExceptionCode::GatewayTargetDevice)?;
        let read = |table: Table, addr: u16, count: u16, d: &Device| -> Result<Vec<u16>, ExceptionCode> {
            if count == 0 || count > 125 {
                return Err(ExceptionCode::IllegalDataValue);
            }
            // like most devices: a read touching some defined register gets 0 for undefined
            // ones between them; a read touching none is refused
            let last = addr.checked_add(count - 1).ok_or(ExceptionCode::IllegalDataAddress)?;
            let words: Vec<Option<u16>> = (addr..=last).map(|a| d.registers.get(&(table, a)).copied()).collect();
            if words.iter().all(Option::is_none) {
                return Err(ExceptionCode::IllegalDataAddress);
            }
            Ok(words.into_iter().map(|w| w.unwrap_or(0)).collect())
        };
        match req.request {
            Request::ReadHoldingRegisters(addr, count) => Ok(Some(Response::ReadHoldingRegisters(read(
                Table::Holding,
                addr,
                count,
                device,
            )?))),
            Request::ReadInputRegisters(addr, count) => Ok(Some(Response::ReadInputRegisters(read(
                Table::Input,
                addr,
                count,
                device,
            )?))),
            Request::WriteSingleRegister(addr, word) => {
                write(device, addr, &[word], WriteFunction::Single)?;
                Ok(Some(Response::WriteSingleRegister(addr, word)))
            }
            Request::WriteMultipleRegisters(addr, words) => {
                write(device, addr, &words, WriteFunction::Multiple)?;
                Ok(Some(Response::WriteMultipleRegisters(addr, words.len() as u16)))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    /// Advances the models every `tick` of wall time by `tick × speed` of simulated time, until
    /// the handle is aborted.
    fn run_models(&self, tick: Duration, speed: f64) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            loop {
                every.tick().await;
                sim.step(tick.as_secs_f64() * speed);
            }
        })
    }

    /// Serves Modbus TCP on `listener` until `stop` resolves; the models advance every
    /// `tick` of wall time by `tick × speed` of simulated time.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        tick: Duration,
        speed: f64,
        stop: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let stepper = self.run_models(tick, speed);
        let sim = self.clone();
        let on_connected = move |stream, addr: SocketAddr| {
            let sim = sim.clone();
            async move {
                if sim.fault() == Fault::Disconnect {
                    return Ok(None);
                }
                accept_tcp_connection(stream, addr, |_| {
                    Ok(Some(Service {
                        sim: sim.clone(),
                        multidrop: false,
                    }))
                })
            }
        };
        let result = Server::new(listener)
            .serve_until(
                &on_connected,
                |e| tracing::debug!(error = %e, "simulator connection"),
                stop,
            )
            .await;
        stepper.abort();
        result.map(|_| ())
    }

    /// Serves Modbus RTU on a serial line until `stop` resolves, as the devices of one RS-485
    /// bus: a unit id that is not on the bus gets no answer at all, as on a real multi-drop line.
    pub async fn serve_rtu(
        &self,
        port: tokio_serial::SerialStream,
        tick: Duration,
        speed: f64,
        stop: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let stepper = self.run_models(tick, speed);
        let result = tokio_modbus::server::rtu::Server::new(port)
            .serve_until(self.multidrop(), stop)
            .await;
        stepper.abort();
        result.map(|_| ())
    }

    /// Serves Modbus RTU on a [`Pty`] until `stop` resolves. While no gateway has the line open
    /// the pseudo-terminal reports an I/O error; the simulator waits and serves again, so
    /// gateways may open and close the line as often as they like.
    #[cfg(unix)]
    pub async fn serve_pty(
        &self,
        pty: Pty,
        tick: Duration,
        speed: f64,
        stop: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let stepper = self.run_models(tick, speed);
        tokio::pin!(stop);
        let result = loop {
            let port = match pty
                .master
                .try_clone_native()
                .map_err(std::io::Error::from)
                .and_then(|m| tokio_serial::SerialStream::try_from(m).map_err(std::io::Error::from))
            {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            let server = tokio_modbus::server::rtu::Server::new(port);
            tokio::select! {
                _ = server.serve_forever(self.multidrop()) => {
                    // the line's side is closed (EIO) or garbled: serve a fresh handle shortly
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                () = &mut stop => break Ok(()),
            }
        };
        stepper.abort();
        result
    }

    fn multidrop(&self) -> Service {
        Service {
            sim: self.clone(),
            multidrop: true,
        }
    }
}

/// A pseudo-terminal standing in for an RS-485 line: the simulator serves on its master side
/// ([`Simulator::serve_pty`]); a gateway opens [`Pty::path`] as it would `/dev/ttyUSB0`.
#[cfg(unix)]
#[derive(Debug)]
pub struct Pty {
    master: serialport::TTYPort,
    path: std::path::PathBuf,
}

#[cfg(unix)]
impl Pty {
    /// A new pseudo-terminal pair; the line's side is closed until a gateway opens it by path.
    pub fn open() -> std::io::Result<Self> {
        let (master, line) = serialport::TTYPort::pair().map_err(std::io::Error::from)?;
        let path = serialport::SerialPort::name(&line)
            .ok_or_else(|| std::io::Error::other("the pseudo-terminal has no name"))?;
        Ok(Self {
            master,
            path: path.into(),
        })
    }

    /// The line's device path, e.g. `/dev/pts/3`.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The simulator as a tokio-modbus service. On a multi-drop line (RTU) requests for units that
/// are not there go unanswered; over TCP they get "gateway target device failed to respond".
struct Service {
    sim: Simulator,
    multidrop: bool,
}

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let answer = match self.sim.answer(req) {
            Err(ExceptionCode::GatewayTargetDevice) if self.multidrop => Ok(None),
            other => other,
        };
        std::future::ready(answer)
    }
}

/// Writes `words` at `addr` with `function`: only whole writable points, within their limits. A
/// point its profile writes with function 06 refuses function 16, as the devices that need 06 do.
fn write(d: &mut Device, addr: u16, words: &[u16], function: WriteFunction) -> Result<(), ExceptionCode> {
    let p = d
        .profile
        .points
        .iter()
        .find(|p| p.table == Table::Holding && p.address == addr && p.writable.is_some())
        .cloned()
        .ok_or(ExceptionCode::IllegalDataAddress)?;
    if words.len() != usize::from(p.ty.registers()) {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    let w = p.writable.ok_or(ExceptionCode::IllegalDataAddress)?;
    if w.function == WriteFunction::Single && function != WriteFunction::Single {
        return Err(ExceptionCode::IllegalFunction);
    }
    let value =
        p.ty.decode(words, d.profile.device.word_order)
            .ok_or(ExceptionCode::IllegalDataValue)?
            * p.scale;
    if value < w.min - 1e-9 || value > w.max + 1e-9 {
        return Err(ExceptionCode::IllegalDataValue);
    }
    match p.quantity {
        Some(Quantity::BatterySetpointW) => d.model.setpoint_w = value,
        Some(Quantity::EvCurrentLimitA) => d.model.current_limit_a = value,
        Some(Quantity::ExportLimitW) => d.model.peak_w = d.model.peak_w.min(value.max(0.0)),
        _ => {}
    }
    store(d, &p, value);
    Ok(())
}

/// Puts an engineering value into a point's registers. Where the point has a scale factor, it is
/// the smallest of 0 to 4 that makes the value fit its register, as a SunSpec device picks it (a
/// home exporting 40 kW does not fit an int16 in W).
fn store(d: &mut Device, p: &Point, value: f64) {
    let order = d.profile.device.word_order;
    let most = if p.scale_factor_at.is_some() { 4 } else { 0 };
    let fitted = (0..=most).find_map(|sf: i16| {
        p.ty.encode(value / p.scale / 10f64.powi(i32::from(sf)), order)
            .map(|words| (sf, words))
    });
    if let Some((sf, words)) = fitted {
        for (i, w) in words.into_iter().enumerate() {
            d.registers.insert((p.table, p.address + i as u16), w);
        }
        if let Some(at) = p.scale_factor_at {
            d.registers.insert((p.table, at), sf as u16);
        }
    }
}

/// Writes the model's values into the registers of the points that show them.
fn publish(d: &mut Device) {
    let m = d.model.clone();
    for p in d.profile.points.clone() {
        if p.writable.is_some() {
            continue; // setpoints hold what was written
        }
        let value = match (p.quantity, p.unit.as_str()) {
            (Some(Quantity::PowerW), _) => m.power_w,
            (Some(Quantity::EnergyInWh), _) => m.energy_in_wh.floor(),
            (Some(Quantity::EnergyOutWh), _) => m.energy_out_wh.floor(),
            (Some(Quantity::SocPermille), _) => m.soc_permille.round(),
            (Some(Quantity::Status), _) => match m.kind {
                DeviceKind::PvInverter if m.power_w > 0.0 => 4.0, // SunSpec MPPT
                DeviceKind::PvInverter => 2.0,                    // sleeping
                DeviceKind::EvCharger if m.power_w > 0.0 => 3.0,  // charging
                _ => 1.0,
            },
            (_, "V") => 230.0,
            (_, "Hz") => 50.0,
            (_, "A") => m.power_w.abs() / 230.0 / 3.0,
            _ => 0.0,
        };
        store(d, &p, value);
    }
}

/// SunSpec's marker and model chain for a profile whose points lie in model 103's data as this
/// chain places it (the generic `sunspec-inverter-103.toml`): "SunS" at 40000, model 1 (66
/// registers) at 40002, model 103 (50 registers) at 40070, end marker at 40122. Profiles with
/// points elsewhere up there (SolarEdge's and Fronius's 65-register common block, SolarEdge's
/// battery block) get no chain rather than a wrong one.
fn sunspec_header(d: &mut Device, unit: u8) {
    if d.profile.points.is_empty() || !d.profile.points.iter().all(|p| (40_072..40_122).contains(&p.address)) {
        return;
    }
    let text = |s: &str, words: usize| -> Vec<u16> {
        let mut b: Vec<u8> = s.bytes().take(words * 2).collect();
        b.resize(words * 2, 0);
        b.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
    };
    let common: Vec<u16> = [
        text(&d.profile.device.manufacturer, 16),
        text(&d.profile.device.name, 16),
        text("", 8),
        text("sim-1.0", 8),
        text(&format!("SIM-{unit:03}"), 16),
    ]
    .concat();
    let mut put = |a: u16, w: u16| {
        d.registers.insert((Table::Holding, a), w);
    };
    put(40_000, 0x5375); // "Su"
    put(40_001, 0x6e53); // "nS"
    put(40_002, 1);
    put(40_003, 66);
    for (i, w) in common.into_iter().enumerate() {
        put(40_004 + i as u16, w);
    }
    put(40_068, unit.into()); // DA: the device address
    put(40_069, 0x8000); // padding
    put(40_070, 103);
    put(40_071, 50);
    for a in 40_072..40_122 {
        put(a, 0x8000); // "not implemented" until a point says otherwise
    }
    put(40_122, 0xFFFF);
    put(40_123, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_too_big_for_its_register_takes_a_scale_factor() {
        let text = "[device]\nname = \"m\"\nmanufacturer = \"x\"\nkind = \"grid_meter\"\n\n\
                    [[points]]\nname = \"p\"\nquantity = \"power_w\"\ntable = \"holding\"\n\
                    address = 10\ntype = \"i16\"\nscale = -1.0\nunit = \"W\"\nscale_factor_at = 11\n";
        let profile = Profile::parse(std::path::Path::new("m.toml"), text).unwrap();
        let p = profile.points[0].clone();
        let mut d = Device {
            model: Model::new(profile.device.kind),
            profile,
            registers: HashMap::new(),
        };
        // -1500 W fits: raw 1500 (the sign turned), scale factor 0
        store(&mut d, &p, -1_500.0);
        assert_eq!(d.registers[&(Table::Holding, 10)], 1_500);
        assert_eq!(d.registers[&(Table::Holding, 11)], 0);
        // -40,000 W does not fit an int16: raw 4000 × 10^1
        store(&mut d, &p, -40_000.0);
        assert_eq!(d.registers[&(Table::Holding, 10)], 4_000);
        assert_eq!(d.registers[&(Table::Holding, 11)], 1);
    }

    #[test]
    fn energy_counters_carry_on_from_where_they_were() {
        let text = "[device]\nname = \"m\"\nmanufacturer = \"x\"\nkind = \"grid_meter\"\n";
        let profile = Profile::parse(std::path::Path::new("m.toml"), text).unwrap();
        // 19:00 UTC: the evening peak, the meter imports
        let sim = Simulator::new(19.0 * 3_600.0);
        sim.add(1, profile.clone());
        sim.step(60.0);
        let before = sim.energy_counters();
        assert!(before[&1].0 > 0.0, "{before:?}");
        // a new simulator (the demo started again) restores them and counts on from there
        let again = Simulator::new(19.0 * 3_600.0 + 60.0);
        again.add(1, profile);
        again.restore_energy_counters(&before);
        again.restore_energy_counters(&[(9, (5.0, 5.0))].into_iter().collect()); // no such unit
        again.step(60.0);
        let after = again.energy_counters();
        assert_eq!(after.len(), 1);
        assert!(after[&1].0 > before[&1].0, "{before:?} {after:?}");
        assert!(after[&1].1 >= before[&1].1, "{before:?} {after:?}");
        // nonsense is taken as zero
        again.restore_energy_counters(&[(1, (f64::NAN, -3.0))].into_iter().collect());
        assert_eq!(again.energy_counters()[&1], (0.0, 0.0));
    }
}
