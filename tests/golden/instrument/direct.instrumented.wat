(module
  (type (;0;) (func))
  (type (;1;) (func (result i32)))
  (type (;2;) (func (param i32)))
  (type (;3;) (func (param i32) (result i32)))
  (type (;4;) (func (param i32 i32) (result i32)))
  (type (;5;) (func (param i32 i64 i32)))
  (type (;6;) (func (param i32 i64 i64 i32)))
  (type (;7;) (func (param i32 i64 i64 i64 i32)))
  (import "heapscope" "alloc" (func $heapscope:alloc (;0;) (type 7)))
  (import "heapscope" "free" (func $heapscope:free (;1;) (type 5)))
  (import "heapscope" "realloc" (func $heapscope:realloc (;2;) (type 7)))
  (import "heapscope" "grow" (func $heapscope:grow (;3;) (type 6)))
  (memory (;0;) 1)
  (memory (;1;) 16 16)
  (global $top (;0;) (mut i32) i32.const 1024)
  (global $heapscope:sp (;1;) (mut i32) i32.const 0)
  (global $heapscope:nest (;2;) (mut i32) i32.const 0)
  (export "memory" (memory 0))
  (export "_start" (func $main))
  (export "heapscope:global:0" (global $top))
  (export "heapscope:memory:0" (memory 0))
  (export "heapscope:shadow" (memory 1))
  (export "heapscope:sp" (global $heapscope:sp))
  (func $malloc (;4;) (type 3) (param i32) (result i32)
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
  (func $malloc.heapscope_original (;5;) (type 3) (param i32) (result i32)
    (local i32 i32 i32)
    global.get $heapscope:sp
    local.tee 2
    i32.const 4
    i32.add
    local.set 3
    global.get $top
    i32.const 4
    i32.add
    local.set 1
    global.get $top
    local.get 0
    i32.store
    local.get 1
    local.get 0
    i32.const 7
    i32.add
    i32.const -8
    i32.and
    i32.add
    global.set $top
    local.get 1
  )
  (func $free (;6;) (type 2) (param i32)
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
  (func $helper (;7;) (type 0)
    (local i32 i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
    i32.const 222
    local.get 1
    i32.const 1
    i32.store 1
    local.get 2
    global.set $heapscope:sp
    call $malloc
    local.set 0
    local.get 0
    local.get 1
    i32.const 2
    i32.store 1
    local.get 2
    global.set $heapscope:sp
    call $free
  )
  (func $main (;8;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 1
    local.get 0
    i32.const 5
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $load
    call $add
    drop
    local.get 0
    i32.const 6
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $work
  )
  (func $work (;9;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    local.get 0
    i32.const 3
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $helper
    local.get 0
    i32.const 4
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $helper
  )
  (func $load (;10;) (type 1) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 111
    local.get 0
    i32.const 0
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
  )
  (func $heapscope:grow:0 (;11;) (type 3) (param i32) (result i32)
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
  (func $free.heapscope_original (;12;) (type 2) (param i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
  )
  (func $add (;13;) (type 4) (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add
  )
  (@producers
    (processed-by "walrus" "0.28.0")
  )
  (@custom "heapscope.sites" (after code) "\01\04\04load\06helper\04work\04main\07\033\01\00\00\00\00\04=\01\01\00\00\00\04C\01\01\00\00\00\05H\01\02\00\00\00\05J\01\02\00\00\00\06Q\01\03\00\00\00\06V\01\03\00\00\00")
)
