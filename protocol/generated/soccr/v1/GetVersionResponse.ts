// Original file: protos/soccr/v1/soccr.proto

import type { Features as _soccr_v1_Features, Features__Output as _soccr_v1_Features__Output } from '../../soccr/v1/Features';

export interface GetVersionResponse {
  /**
   * soccrd's own version (package.json).
   */
  'version'?: (string);
  /**
   * uname release of the host kernel.
   */
  'kernelRelease'?: (string);
  /**
   * Version of the checkpoint stream and file format this daemon writes.
   */
  'streamFormat'?: (number);
  /**
   * Which features work on this host, probed at start.
   */
  'features'?: (_soccr_v1_Features | null);
  /**
   * Where this daemon takes direct transfers (DataTransfer) from other daemons, "host:port"; empty when
   * it does not listen for them (--data-listen).
   */
  'dataEndpoint'?: (string);
  /**
   * Every stream and file format this daemon reads (stream_format among them). Empty from a daemon older
   * than this field: it reads stream_format only. migrate() checks before freezing anything that the
   * destination reads what the source writes, so a rolling upgrade of soccrd (destinations first) never
   * strands a migration halfway.
   */
  'streamFormatsRead'?: (number)[];
}

export interface GetVersionResponse__Output {
  /**
   * soccrd's own version (package.json).
   */
  'version': (string);
  /**
   * uname release of the host kernel.
   */
  'kernelRelease': (string);
  /**
   * Version of the checkpoint stream and file format this daemon writes.
   */
  'streamFormat': (number);
  /**
   * Which features work on this host, probed at start.
   */
  'features': (_soccr_v1_Features__Output | null);
  /**
   * Where this daemon takes direct transfers (DataTransfer) from other daemons, "host:port"; empty when
   * it does not listen for them (--data-listen).
   */
  'dataEndpoint': (string);
  /**
   * Every stream and file format this daemon reads (stream_format among them). Empty from a daemon older
   * than this field: it reads stream_format only. migrate() checks before freezing anything that the
   * destination reads what the source writes, so a rolling upgrade of soccrd (destinations first) never
   * strands a migration halfway.
   */
  'streamFormatsRead': (number)[];
}
