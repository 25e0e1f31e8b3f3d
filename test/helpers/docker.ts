import Docker from 'dockerode';

/** A client for the rig's real dockerd (default socket). */
export function dockerClient(): Docker {
  return new Docker();
}
