//! What the firmware is told to do at boot: the semihosting command line.
//!
//! QEMU passes `-semihosting-config enable=on,target=native,arg=A,arg=B` as the command line
//! "A B" (without `arg=`, the kernel's file name). Words of the form `key=value` are commands;
//! a first word without `=` (a program name) is ignored. Commands, run in order once the DHCP
//! lease is up:
//!
//! | word | what |
//! |---|---|
//! | `dns=NAME` | resolve NAME (A record) through the DNS servers of the lease |
//! | `get=HOST:PORT/PATH` | HTTP/1.0 GET from HOST (a name or an IPv4 address) |
//! | `ping=ADDRESS` | three ICMP echo requests to an IPv4 address |
//! | `reboot=N` | reset the board until it has booted N times (each boot takes a lease) |
//! | `exit=1` | after the commands, exit QEMU: status 0 if every command succeeded |
//!
//! Anything else is an error (the firmware exits with status 1).

use heapless::Vec;

/// Longest command line read.
const MAX: usize = 512;
/// Most commands on one command line.
pub const MAX_COMMANDS: usize = 16;

/// One command of the command line.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    /// `dns=NAME`
    Dns(&'static str),
    /// `get=HOST:PORT/PATH`
    Get(&'static str),
    /// `ping=ADDRESS`
    Ping(&'static str),
    /// `reboot=N`
    Reboot(u32),
    /// `exit=1`
    Exit,
}

/// The parsed command line.
pub struct CmdLine {
    /// The commands in order.
    pub commands: Vec<Command, MAX_COMMANDS>,
}

/// Read and parse the command line. Errors name the word that is not understood.
pub fn read() -> Result<CmdLine, &'static str> {
    static mut BUF: [u8; MAX] = [0; MAX];
    // SAFETY: called once, from the init task, before anything else reads BUF; afterwards BUF
    // is only read (through the returned &'static str slices).
    let buf: &'static mut [u8; MAX] = unsafe { &mut *core::ptr::addr_of_mut!(BUF) };
    let mut block = [buf.as_mut_ptr() as usize, MAX - 1];
    // SAFETY: SYS_GET_CMDLINE writes at most block[1] bytes to the buffer of block[0] (ours,
    // MAX bytes) and the length into block[1].
    let r = unsafe {
        cortex_m_semihosting::syscall1(
            cortex_m_semihosting::nr::GET_CMDLINE,
            block.as_mut_ptr() as usize,
        )
    };
    let len = if r == 0 { block[1].min(MAX - 1) } else { 0 };
    let line = core::str::from_utf8(&buf[..len]).map_err(|_| "command line is not UTF-8")?;
    parse(line)
}

fn parse(line: &'static str) -> Result<CmdLine, &'static str> {
    let mut commands = Vec::new();
    for (i, word) in line.split_ascii_whitespace().enumerate() {
        let Some((key, value)) = word.split_once('=') else {
            if i == 0 {
                continue;
            }
            return Err(word);
        };
        let cmd = match key {
            "dns" => Command::Dns(value),
            "get" => Command::Get(value),
            "ping" => Command::Ping(value),
            "reboot" => Command::Reboot(value.parse().map_err(|_| word)?),
            "exit" if value == "1" => Command::Exit,
            _ => return Err(word),
        };
        commands.push(cmd).map_err(|_| "too many commands")?;
    }
    Ok(CmdLine { commands })
}
