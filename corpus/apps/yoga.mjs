// yoga-layout (emscripten, the module inlined in its glue as base64):
// lay out a flex tree of 300 nodes, print a few computed boxes.
import { printMemories } from "./memory.mjs";
const { default: Yoga, FlexDirection, Justify, Wrap } = await import("yoga-layout");
const root = Yoga.Node.create();
root.setWidth(1000);
root.setFlexDirection(FlexDirection.Row);
root.setFlexWrap(Wrap.Wrap);
root.setJustifyContent(Justify.SpaceBetween);
for (let i = 0; i < 300; i++) {
  const c = Yoga.Node.create();
  c.setWidth(40 + (i % 9) * 7);
  c.setHeight(20 + (i % 5) * 4);
  c.setMargin(0, i % 4);
  root.insertChild(c, i);
}
root.calculateLayout(undefined, undefined);
const boxes = [0, 1, 150, 299].map((i) => root.getChild(i).getComputedLayout());
console.log(`root ${root.getComputedWidth()}x${root.getComputedHeight()}, boxes ${JSON.stringify(boxes)}`);
root.freeRecursive();
printMemories();
