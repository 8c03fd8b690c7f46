(module
  (type (;0;) (func))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32) (result i32)))
  (type (;3;) (func (param i32 i64 i32)))
  (type (;4;) (func (param i32 i64 i64 i32)))
  (type (;5;) (func (param i32 i64 i64 i64 i32)))
  (import "heapscope" "alloc" (func $heapscope:alloc (;0;) (type 5)))
  (import "heapscope" "free" (func $heapscope:free (;1;) (type 3)))
  (import "heapscope" "realloc" (func $heapscope:realloc (;2;) (type 5)))
  (import "heapscope" "grow" (func $heapscope:grow (;3;) (type 4)))
  (memory $heap (;0;) 1)
  (memory $side (;1;) 1 10)
  (memory (;2;) 16 16)
  (global $top (;0;) (mut i32) i32.const 1024)
  (global $heapscope:sp (;1;) (mut i32) i32.const 0)
  (global $heapscope:nest (;2;) (mut i32) i32.const 0)
  (export "memory" (memory $heap))
  (export "_start" (func $main))
  (export "heapscope:global:0" (global $top))
  (export "heapscope:memory:0" (memory $heap))
  (export "heapscope:memory:1" (memory $side))
  (export "heapscope:shadow" (memory 2))
  (export "heapscope:sp" (global $heapscope:sp))
  (func $main (;4;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 999
    local.get 0
    i32.const 1
    i32.store 2
    local.get 1
    global.set $heapscope:sp
    call $malloc
    local.get 0
    i32.const 2
    i32.store 2
    local.get 1
    global.set $heapscope:sp
    call $free
    i32.const 1
    local.get 0
    i32.const 3
    i32.store 2
    local.get 1
    global.set $heapscope:sp
    call $heapscope:grow:0
    drop
    local.get 0
    i32.const 4
    i32.store 2
    local.get 1
    global.set $heapscope:sp
    call $grow_side
  )
  (func $malloc (;5;) (type 2) (param i32) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $malloc.heapscope_original
    local.set 1
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      i32.const 1
      local.get 1
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      i64.const 0
      local.get 2
      call $heapscope:alloc
    else
    end
    local.get 1
  )
  (func $free (;6;) (type 1) (param i32)
    (local i32)
    global.get $heapscope:sp
    local.set 1
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $free.heapscope_original
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      i32.const 4
      local.get 0
      i64.extend_i32_u
      local.get 1
      call $heapscope:free
    else
    end
  )
  (func $grow_side (;7;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 4
    local.get 0
    i32.const 0
    i32.store 2
    local.get 1
    global.set $heapscope:sp
    call $heapscope:grow:1
    drop
  )
  (func $malloc.heapscope_original (;8;) (type 2) (param i32) (result i32)
    (local i32 i32 i32)
    global.get $heapscope:sp
    local.tee 2
    i32.const 4
    i32.add
    local.set 3
    global.get $top
    local.set 1
    global.get $top
    local.get 0
    i32.add
    global.set $top
    local.get 1
  )
  (func $heapscope:grow:0 (;9;) (type 2) (param i32) (result i32)
    (local i32)
    local.get 0
    memory.grow
    local.set 1
    i32.const 0
    local.get 0
    i64.extend_i32_u
    local.get 1
    i64.extend_i32_s
    global.get $heapscope:sp
    call $heapscope:grow
    local.get 1
  )
  (func $heapscope:grow:1 (;10;) (type 2) (param i32) (result i32)
    (local i32)
    local.get 0
    memory.grow $side
    local.set 1
    i32.const 1
    local.get 0
    i64.extend_i32_u
    local.get 1
    i64.extend_i32_s
    global.get $heapscope:sp
    call $heapscope:grow
    local.get 1
  )
  (func $free.heapscope_original (;11;) (type 1) (param i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
  )
  (@producers
    (processed-by "walrus" "0.28.0")
  )
  (@custom "heapscope.sites" (after code) "\01\02\09grow_side\04main\05\02\1a\01\00\00\00\00\03#\01\01\00\00\00\03%\01\01\00\00\00\03)\01\01\00\00\00\03,\01\01\00\00\00")
)
