/** ssh2's client module on its own (see ssh-connect.ts): the same class as ssh2's `Client`. */
declare module 'ssh2/lib/client.js' {
  import { Client } from 'ssh2';
  export default Client;
}
