// @dimforge/rapier2d-compat (wasm-bindgen, the module inlined in its glue
// as base64): 50 boxes fall on the ground for 300 steps.
import { printMemories } from "./memory.mjs";
import RAPIER from "@dimforge/rapier2d-compat";
await RAPIER.init();
const world = new RAPIER.World({ x: 0, y: -9.81 });
world.createCollider(RAPIER.ColliderDesc.cuboid(50, 0.5));
const bodies = [];
for (let i = 0; i < 50; i++) {
  const b = world.createRigidBody(RAPIER.RigidBodyDesc.dynamic().setTranslation((i % 10) - 5, 2 + Math.floor(i / 10) * 1.5));
  world.createCollider(RAPIER.ColliderDesc.cuboid(0.4, 0.4), b);
  bodies.push(b);
}
for (let s = 0; s < 300; s++) world.step();
const ys = bodies.map((b) => b.translation().y);
console.log(`50 bodies after 300 steps: min y ${Math.min(...ys).toFixed(3)}, max y ${Math.max(...ys).toFixed(3)}, sleeping ${bodies.filter((b) => b.isSleeping()).length}`);
world.free();
printMemories();
