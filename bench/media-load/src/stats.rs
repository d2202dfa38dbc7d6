//! What the load generator computes, free of I/O: the payload it sends (stream, packet number,
//! send time and a pattern, checked byte for byte at the far end), RFC 3550 interarrival
//! jitter, the order and loss of one received stream, a delay histogram and percentiles.

/// G.711 bytes in a 20 ms packet.
pub const PAYLOAD: usize = 160;
/// Bytes of the payload that carry the stream, the packet number and the send time.
const STAMP: usize = 16;

/// Writes the payload of packet `n` of stream `stream`, sent at `sent_us` (microseconds since
/// the run's start): stream, number and time, then a pattern both ends can compute. Any byte
/// is a valid G.711 sample, so this is audio as far as a relay is concerned.
pub fn make_payload(stream: u32, n: u32, sent_us: u64, out: &mut [u8; PAYLOAD]) {
    out[0..4].copy_from_slice(&stream.to_be_bytes());
    out[4..8].copy_from_slice(&n.to_be_bytes());
    out[8..16].copy_from_slice(&sent_us.to_be_bytes());
    for (i, b) in out[STAMP..].iter_mut().enumerate() {
        *b = pattern(stream, n, i);
    }
}

fn pattern(stream: u32, n: u32, i: usize) -> u8 {
    (stream.wrapping_mul(31) ^ n.wrapping_mul(7)).wrapping_add(i as u32) as u8
}

/// What a received payload says: `(stream, packet number, send time)`, or `None` when it is
/// not one of ours byte for byte (wrong length, or the pattern does not match its stamp).
pub fn read_payload(payload: &[u8]) -> Option<(u32, u32, u64)> {
    if payload.len() != PAYLOAD {
        return None;
    }
    let stream = u32::from_be_bytes(payload[0..4].try_into().ok()?);
    let n = u32::from_be_bytes(payload[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(payload[8..16].try_into().ok()?);
    let intact = payload[STAMP..]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(stream, n, i));
    intact.then_some((stream, n, sent))
}

/// RFC 3550 §6.4.1 interarrival jitter, in microseconds: `J += (|D| - J) / 16`, where `D` is
/// the change in transit time (arrival less the sender's clock) between consecutive packets.
#[derive(Debug, Clone, Default)]
pub struct Jitter {
    last_transit: Option<i64>,
    j: f64,
    sum: f64,
    samples: u64,
}

impl Jitter {
    /// One packet: its arrival and the sender's time for it, both in microseconds.
    pub fn add(&mut self, arrival_us: i64, sender_us: i64) {
        let transit = arrival_us - sender_us;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            self.j += (d - self.j) / 16.0;
            self.sum += self.j;
            self.samples += 1;
        }
        self.last_transit = Some(transit);
    }

    /// The estimate now.
    pub fn now_us(&self) -> f64 {
        self.j
    }

    /// The mean of the estimate over the stream (0 before two packets).
    pub fn mean_us(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.sum / self.samples as f64
        }
    }
}

/// Order and count of one received stream, by RTP sequence number (wrapping at 2^16).
#[derive(Debug, Clone, Default)]
pub struct Order {
    /// Extended sequence number of the first and of the highest packet seen.
    first: Option<u64>,
    highest: u64,
    pub received: u64,
    /// Packets that came after one with a higher sequence number (late or duplicated).
    pub out_of_order: u64,
}

impl Order {
    pub fn add(&mut self, seq: u16) {
        self.received += 1;
        let Some(_) = self.first else {
            self.first = Some(u64::from(seq) + (1 << 16));
            self.highest = u64::from(seq) + (1 << 16);
            return;
        };
        // The extended number closest to the highest seen.
        let cycle = self.highest & !0xffff;
        let candidates = [cycle.wrapping_sub(1 << 16), cycle, cycle + (1 << 16)];
        let ext = candidates
            .iter()
            .map(|c| c + u64::from(seq))
            .min_by_key(|e| e.abs_diff(self.highest))
            .unwrap_or(self.highest);
        if ext > self.highest {
            self.highest = ext;
        } else {
            self.out_of_order += 1;
        }
    }

    /// Packets the sequence numbers say were sent, first to highest.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest + 1 - f)
    }

    /// Packets missing between the first and the highest (0 when more came than that span,
    /// as duplicates do).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

/// A histogram of delays in 10 µs buckets up to 1 s (everything above in the last one).
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 100_000;

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: vec![0; BUCKETS],
            count: 0,
        }
    }
}

impl Histogram {
    pub fn add(&mut self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[i] += 1;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The delay at quantile `q` (0..=1), in microseconds (the bucket's upper edge).
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (i as u64 + 1) * BUCKET_US;
            }
        }
        BUCKETS as u64 * BUCKET_US
    }
}

/// The value at quantile `q` (0..=1) of `values` (nearest rank; 0 for none).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_any_changed_byte_is_caught() {
        let mut p = [0u8; PAYLOAD];
        make_payload(42, 7, 123_456, &mut p);
        assert_eq!(read_payload(&p), Some((42, 7, 123_456)));
        for i in STAMP..PAYLOAD {
            let mut bad = p;
            bad[i] ^= 0x01;
            assert_eq!(read_payload(&bad), None, "byte {i}");
        }
        // Another packet's stamp on this pattern does not pass.
        let mut other = p;
        other[4..8].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(read_payload(&other), None);
        assert_eq!(read_payload(&p[..100]), None);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        // Perfect spacing: no jitter.
        let mut j = Jitter::default();
        for k in 0..50 {
            j.add(1_000 + k * 20_000, k * 20_000);
        }
        assert_eq!(j.now_us(), 0.0);
        // Every other packet 1 ms late: |D| is 1000 each time; J climbs towards 1000.
        let mut j = Jitter::default();
        for k in 0..2000 {
            j.add(k * 20_000 + (k % 2) * 1_000, k * 20_000);
        }
        assert!((j.now_us() - 1000.0).abs() < 1.0, "{}", j.now_us());
        assert!(j.mean_us() > 900.0 && j.mean_us() <= 1000.0);
        // One step: J = 1000/16 after the first difference.
        let mut j = Jitter::default();
        j.add(0, 0);
        j.add(21_000, 20_000);
        assert!((j.now_us() - 62.5).abs() < 1e-9);
    }

    #[test]
    fn order_counts_loss_reordering_and_wrap() {
        let mut o = Order::default();
        for s in [65530u16, 65531, 65533, 65532, 65534, 65535, 0, 1, 3] {
            o.add(s);
        }
        assert_eq!(o.received, 9);
        assert_eq!(o.expected(), 10); // 65530..=3 across the wrap
        assert_eq!(o.lost(), 1); // 2
        assert_eq!(o.out_of_order, 1); // 65532 after 65533
        let mut d = Order::default();
        for s in [5u16, 6, 6, 7] {
            d.add(s);
        }
        assert_eq!((d.lost(), d.out_of_order), (0, 1));
    }

    #[test]
    fn histogram_and_quantiles() {
        let mut h = Histogram::default();
        for us in 1..=100 {
            h.add(us * 100);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_us(0.5), 5_010);
        assert_eq!(h.quantile_us(0.99), 9_910);
        let mut g = Histogram::default();
        g.add(5_000_000);
        h.merge(&g);
        assert_eq!(h.quantile_us(1.0), 1_000_000);
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), 198.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
