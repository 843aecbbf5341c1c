// Asks a NameServer for routes with ali-ons, a pure-JavaScript RocketMQ 4.x client, exactly as
// its producers and consumers do. Usage: node ali_ons_route.js HOST:PORT (with ali-ons on
// NODE_PATH or installed next to this file: `npm install ali-ons@3.12.0`).
'use strict';
const MQClientAPI = require('ali-ons/lib/mq_client_api');
(async () => {
  const api = new MQClientAPI({ nameSrv: process.argv[2], httpclient: {}, logger: console });
  await api.ready();
  const route = await api.getTopicRouteInfoFromNameServer('TopicTest', 3000);
  console.log(JSON.stringify(route));
  try {
    await api.getTopicRouteInfoFromNameServer('NoSuchTopic', 3000);
    console.error('FAILED: a missing topic returned a route');
    process.exit(1);
  } catch (e) {
    console.log('missing topic:', e.name, e.message.split('\n')[0]);
  }
  await api.close();
})().catch(e => { console.error('FAILED', e); process.exit(1); });
