(module
  (type (;0;) (func))
  (type (;1;) (func (param i32 i64 i32)))
  (type (;2;) (func (param i32 i64 i64 i32)))
  (type (;3;) (func (param i32 i64 i64 i64 i32)))
  (type (;4;) (func (param i64)))
  (type (;5;) (func (param i64) (result i64)))
  (import "heapscope" "alloc" (func $heapscope:alloc (;0;) (type 3)))
  (import "heapscope" "free" (func $heapscope:free (;1;) (type 1)))
  (import "heapscope" "realloc" (func $heapscope:realloc (;2;) (type 3)))
  (import "heapscope" "grow" (func $heapscope:grow (;3;) (type 2)))
  (memory (;0;) i64 1)
  (memory (;1;) 16 16)
  (global $top (;0;) (mut i64) i64.const 4096)
  (global $heapscope:sp (;1;) (mut i32) i32.const 0)
  (global $heapscope:nest (;2;) (mut i32) i32.const 0)
  (export "memory" (memory 0))
  (export "_start" (func $main))
  (export "heapscope:global:0" (global $top))
  (export "heapscope:memory:0" (memory 0))
  (export "heapscope:shadow" (memory 1))
  (export "heapscope:sp" (global $heapscope:sp))
  (func $main (;4;) (type 0)
    (local i32 i32 i64)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i64.const 777
    local.get 0
    i32.const 0
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    local.set 2
    i64.const 888
    local.get 0
    i32.const 1
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    drop
    local.get 2
    local.get 0
    i32.const 2
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $free
    i64.const 2
    local.get 0
    i32.const 3
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $heapscope:grow:0
    drop
  )
  (func $malloc (;5;) (type 5) (param i64) (result i64)
    (local i32 i64)
    global.get $heapscope:sp
    local.set 1
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $malloc.heapscope_original
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      i32.const 1
      local.get 2
      local.get 0
      i64.const 0
      local.get 1
      call $heapscope:alloc
    else
    end
    local.get 2
  )
  (func $free (;6;) (type 4) (param i64)
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
      local.get 1
      call $heapscope:free
    else
    end
  )
  (func $malloc.heapscope_original (;7;) (type 5) (param i64) (result i64)
    (local i32 i32 i64)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
    global.get $top
    local.set 3
    global.get $top
    local.get 0
    i64.add
    global.set $top
    local.get 3
  )
  (func $heapscope:grow:0 (;8;) (type 5) (param i64) (result i64)
    (local i64)
    local.get 0
    memory.grow
    local.set 1
    i32.const 0
    local.get 0
    local.get 1
    global.get $heapscope:sp
    call $heapscope:grow
    local.get 1
  )
  (func $free.heapscope_original (;9;) (type 4) (param i64)
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
  (@custom "heapscope.sites" (after code) "\01\01\04main\04\02\1d\01\00\00\00\00\02$\01\00\00\00\00\02)\01\00\00\00\00\02-\01\00\00\00\00")
)
