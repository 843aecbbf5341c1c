'use strict';
// Produces COUNT messages with tags, keys and a user property through the stock ali-ons
// producer, keeping IN_FLIGHT sends outstanding, and prints one JSON line per send result,
// then a summary line. Exit status 0 only if every send succeeded.
//
// env: NAMESRV (host:port), TOPIC, COUNT (default 1000), IN_FLIGHT (default 1),
//      BODY_BYTES (default: a short text body), GROUP (default ringmq_interop_producer)
const { Producer, Message } = require('ali-ons');

const namesrv = process.env.NAMESRV || '127.0.0.1:9876';
const topic = process.env.TOPIC || 'InteropTopic';
const count = parseInt(process.env.COUNT || '1000', 10);
const inFlight = parseInt(process.env.IN_FLIGHT || '1', 10);
const bodyBytes = parseInt(process.env.BODY_BYTES || '0', 10);
const quiet = process.env.QUIET === '1';

async function main() {
  const producer = new Producer({
    nameSrv: namesrv,
    // Only used to look NameServers up over HTTP (onsAddr); unused with nameSrv set.
    httpclient: {},
    producerGroup: process.env.GROUP || 'ringmq_interop_producer',
    instanceName: `interop_${process.pid}`,
  });
  producer.on('error', err => console.error(`producer error: ${err.stack || err}`));
  await producer.ready();
  let next = 0;
  let failed = 0;
  const started = Date.now();
  async function worker() {
    while (next < count) {
      const i = next++;
      const body = bodyBytes > 0 ? Buffer.alloc(bodyBytes, 'x') : Buffer.from(`hello ringmq ${i}`);
      const msg = new Message(topic, `Tag${i % 3}`, body);
      msg.keys = [ `key-${i}` ];
      msg.properties.seq = String(i);
      try {
        const result = await producer.send(msg);
        if (!quiet) {
          console.log(JSON.stringify({ seq: i, status: result.sendStatus, msgId: result.msgId, queueId: result.messageQueue && result.messageQueue.queueId, queueOffset: result.queueOffset }));
        }
      } catch (err) {
        failed++;
        console.error(`send ${i} failed: ${err.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (Date.now() - started) / 1000;
  console.log(JSON.stringify({ summary: true, sent: count - failed, failed, seconds, rate: Math.round((count - failed) / seconds) }));
  await producer.close();
  process.exit(failed === 0 ? 0 : 1);
}

main().catch(err => {
  console.error(`fatal: ${err.stack || err}`);
  process.exit(2);
});
