// Original file: protos/soccr/v1/soccr.proto

import type { Frame as _soccr_v1_Frame, Frame__Output as _soccr_v1_Frame__Output } from '../../soccr/v1/Frame';

export interface FrameBatch {
  'frames'?: (_soccr_v1_Frame)[];
}

export interface FrameBatch__Output {
  'frames': (_soccr_v1_Frame__Output)[];
}
