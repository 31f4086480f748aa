//! rust-mqtt, an MQTT 5 client, on ferronet (through the embassy-net compatibility package):
//! connects to a broker over a ferronet `TcpSocket`, subscribes to one topic and publishes
//! `--count` messages to another, then waits for `--count` messages on the subscribed topic.
//!
//! ```text
//! mqtt-client --tap tap0 --broker 192.0.2.1 [--count 1000] [--sub ferronet/in] [--pub ferronet/out]
//! ```
//!
//! Published messages are `out-0`, `out-1`, ... (QoS 1, each acknowledged before the next).
//! Received messages must be `in-0`, `in-1`, ... in order; the program prints `subscribed` on
//! stdout once the broker acknowledged the subscription (the moment to start publishing to
//! it) and `received N` at the end. Exit status 0 when all were published and all received,
//! 1 otherwise (a lost, duplicated or reordered message, a timeout or an MQTT error).

use std::net::Ipv4Addr;
use std::num::NonZero;

use embassy_executor::Spawner;
use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, with_timeout};
use ferronet_ecosystem::{NetArgs, init, run};
use rust_mqtt::Bytes;
use rust_mqtt::buffer::AllocBuffer;
use rust_mqtt::client::Client;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{
    ConnectOptions, DisconnectOptions, PublicationOptions, SubscriptionOptions, TopicReference,
};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{MqttString, TopicFilter, TopicName};

/// rust-mqtt on ferronet: publish and subscribe through an MQTT broker.
#[derive(Debug, clap::Parser)]
#[command(version, long_about = None)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// The broker's address.
    #[arg(long)]
    broker: Ipv4Addr,
    /// The broker's port.
    #[arg(long, default_value_t = 1883)]
    port: u16,
    /// Messages to publish, and to receive.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// The topic to subscribe to.
    #[arg(long = "sub", default_value = "ferronet/in")]
    sub_topic: String,
    /// The topic to publish to.
    #[arg(long = "pub", default_value = "ferronet/out")]
    pub_topic: String,
    /// Time limit for the whole exchange, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// The client: at most 1 subscription, 16 incoming and 1 outgoing QoS 1 messages in flight.
type Mqtt<'a, 'c> = Client<'a, 'c, TcpSocket<'a>, AllocBuffer, 1, 16, 1, 0, 0, 0, 0>;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = init();
    run(spawner, &args.net, async |stack| {
        with_timeout(Duration::from_secs(args.timeout), session(stack, &args))
            .await
            .unwrap_or_else(|_| Err(format!("not done after {} s", args.timeout)))
    })
    .await
}

/// Connects to the broker and runs the [`exchange`].
async fn session(stack: Stack<'static>, args: &Args) -> Result<(), String> {
    let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
    let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
    socket.set_timeout(Some(Duration::from_secs(30)));
    socket
        .connect((args.broker, args.port))
        .await
        .map_err(|e| format!("connecting to {}:{}: {e:?}", args.broker, args.port))?;
    let mut buffer = AllocBuffer;
    let mut client: Mqtt = Client::new(&mut buffer);
    exchange(&mut client, socket, args).await
}

fn mqtt_str(s: &str) -> Result<MqttString<'_>, String> {
    MqttString::try_from(s).map_err(|e| format!("{s}: {e:?}"))
}

async fn exchange<'a>(
    client: &mut Mqtt<'a, '_>,
    socket: TcpSocket<'a>,
    args: &Args,
) -> Result<(), String> {
    let keep_alive = KeepAlive::Seconds(NonZero::new(60).ok_or("keep-alive")?);
    client
        .connect(
            socket,
            &ConnectOptions::new().clean_start().keep_alive(keep_alive),
            Some(mqtt_str("ferronet-rust-mqtt")?),
        )
        .await
        .map_err(|e| format!("MQTT connect: {e:?}"))?;
    log::info!("connected to {}:{}", args.broker, args.port);

    let filter = TopicFilter::new(mqtt_str(&args.sub_topic)?).ok_or("bad --sub topic")?;
    client
        .subscribe(filter, &SubscriptionOptions::new().at_least_once())
        .await
        .map_err(|e| format!("subscribe: {e:?}"))?;

    let mut received = 0usize;
    // Waits for the broker's answer to what was just sent (`want`), recording the messages
    // that arrive on the subscribed topic meanwhile; with no `want`, returns after the next
    // message.
    let wait_for = async |client: &mut Mqtt<'a, '_>,
                          received: &mut usize,
                          want: Option<fn(&Event<'_, 0, 0>) -> bool>|
           -> Result<(), String> {
        loop {
            let event = client.poll().await.map_err(|e| format!("poll: {e:?}"))?;
            if let Event::Publish(p) = &event {
                let expected = format!("in-{received}");
                if p.message.as_ref() != expected.as_bytes() {
                    return Err(format!(
                        "message {} is {:?}, expected {expected:?}",
                        *received + 1,
                        String::from_utf8_lossy(p.message.as_ref())
                    ));
                }
                *received += 1;
                if want.is_none() {
                    return Ok(());
                }
            } else if want.is_some_and(|want| want(&event)) {
                return Ok(());
            } else {
                return Err(format!("unexpected event {event:?}"));
            }
        }
    };
    wait_for(
        client,
        &mut received,
        Some(|e| matches!(e, Event::Suback(_))),
    )
    .await?;
    println!("subscribed");

    let topic = TopicName::new(mqtt_str(&args.pub_topic)?).ok_or("bad --pub topic")?;
    for i in 0..args.count {
        let options =
            PublicationOptions::new(TopicReference::Name(topic.as_borrowed())).at_least_once();
        let text = format!("out-{i}");
        client
            .publish(&options, Bytes::from(text.as_bytes()))
            .await
            .map_err(|e| format!("publish {i}: {e:?}"))?;
        wait_for(
            &mut *client,
            &mut received,
            Some(|e| matches!(e, Event::PublishAcknowledged(_))),
        )
        .await?;
    }
    log::info!("published {} messages", args.count);
    println!("published {}", args.count);

    while received < args.count {
        wait_for(client, &mut received, None)
            .await
            .map_err(|e| format!("after {received} of {} messages: {e}", args.count))?;
    }
    println!("received {received}");
    client
        .disconnect(&DisconnectOptions::new())
        .await
        .map_err(|e| format!("disconnect: {e:?}"))?;
    Ok(())
}
