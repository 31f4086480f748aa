#![no_std]
#![no_main]

mod board;
mod cmdline;
mod stack;
mod time;
mod net_irq {
    pub fn on_ethernet_interrupt() {}
}

use board::Irq;
use cortex_m_rt::entry;
use embassy_executor::{InterruptExecutor, Spawner};
use embassy_time::{Duration, Instant, Timer};

static EXECUTOR: InterruptExecutor = InterruptExecutor::new();

#[entry]
fn main() -> ! {
    stack::paint();
    let mut cp = cortex_m::Peripherals::take().unwrap();
    time::init(&mut cp.NVIC, 0x80);
    unsafe { cp.NVIC.set_priority(Irq::Executor, 0xE0) };
    let spawner = EXECUTOR.start(Irq::Executor);
    spawner.spawn(init()).unwrap();
    loop {
        cortex_m::asm::wfi();
    }
}

#[embassy_executor::task]
async fn init() {
    let _spawner = unsafe { Spawner::for_current_executor() }.await;
    let t0 = Instant::now();
    for i in 0..3 {
        Timer::after(Duration::from_millis(100)).await;
        info!("tick {} at {} us", i, t0.elapsed().as_micros());
    }
    Timer::after(Duration::from_secs(2)).await;
    info!("2s later at {} us", t0.elapsed().as_micros());
    board::exit(true);
}
