'use strict';
// Consumes TOPIC with the stock ali-ons push consumer in GROUP and prints one JSON line per
// message received (seq, tags, keys, msgId, queue), until STOP_AFTER_IDLE_MS pass with no
// message after at least one arrived, or TIMEOUT_MS overall. Two instances with the same GROUP
// share the queues (clustering).
//
// env: NAMESRV, TOPIC, GROUP, TIMEOUT_MS (default 60000), STOP_AFTER_IDLE_MS (default 5000),
const { Consumer } = require('ali-ons');

const namesrv = process.env.NAMESRV || '127.0.0.1:9876';
const topic = process.env.TOPIC || 'InteropTopic';
const timeoutMs = parseInt(process.env.TIMEOUT_MS || '60000', 10);
const idleMs = parseInt(process.env.STOP_AFTER_IDLE_MS || '5000', 10);

async function main() {
  const consumer = new Consumer({
    nameSrv: namesrv,
    // Only used to look NameServers up over HTTP (onsAddr); unused with nameSrv set.
    httpclient: {},
    consumerGroup: process.env.GROUP || 'ringmq_interop_consumer',
    instanceName: process.env.INSTANCE || `interop_${process.pid}`,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
    persistConsumerOffsetInterval: 1000,
    rebalanceInterval: 2000,
  });
  consumer.on('error', err => console.error(`consumer error: ${err.stack || err}`));
  let received = 0;
  let last = Date.now();
  consumer.subscribe(topic, '*', async msg => {
    received++;
    last = Date.now();
    console.log(JSON.stringify({ seq: msg.properties.seq, tags: msg.tags, keys: msg.keys, msgId: msg.msgId, queueId: msg.queueId, queueOffset: msg.queueOffset, body: msg.body.toString() }));
  });
  await consumer.ready();
  console.error('consumer ready');
  const started = Date.now();
  await new Promise(resolve => {
    const timer = setInterval(() => {
      const now = Date.now();
      if (now - started > timeoutMs || (received > 0 && now - last > idleMs)) {
        clearInterval(timer);
        resolve();
      }
    }, 200);
  });
  await consumer.close();
  console.log(JSON.stringify({ summary: true, received }));
  process.exit(0);
}

main().catch(err => {
  console.error(`fatal: ${err.stack || err}`);
  process.exit(2);
});
