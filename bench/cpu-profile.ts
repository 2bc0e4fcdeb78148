// Preloaded into the daemons by `bench/migration.ts --profile DIR` (NODE_OPTIONS=--require, since Node 20
// refuses --cpu-prof there): profiles the whole process with the in-process inspector and writes
// DIR/soccrd-PID.cpuprofile (SOCCRD_CPU_PROFILE_DIR) at exit, for Chrome DevTools or speedscope.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import * as path from 'node:path';

const dir = process.env.SOCCRD_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  // The in-process session answers synchronously, so this works in an 'exit' handler.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(path.join(dir, `soccrd-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
