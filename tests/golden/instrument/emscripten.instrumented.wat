(module
  (type (;0;) (func))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32) (result i32)))
  (type (;3;) (func (param i32 i64 i32)))
  (type (;4;) (func (param i32 i64 i64 i32)))
  (type (;5;) (func (param i32 i64 i64 i64 i32)))
  (import "env" "emscripten_resize_heap" (func $emscripten_resize_heap (;0;) (type 2)))
  (import "heapscope" "alloc" (func $heapscope:alloc (;1;) (type 5)))
  (import "heapscope" "free" (func $heapscope:free (;2;) (type 3)))
  (import "heapscope" "realloc" (func $heapscope:realloc (;3;) (type 5)))
  (import "heapscope" "grow" (func $heapscope:grow (;4;) (type 4)))
  (import "heapscope" "flush" (func $heapscope:flush (;5;) (type 0)))
  (memory (;0;) 1)
  (memory (;1;) 17 17)
  (global $heapscope:sp (;0;) (mut i32) i32.const 0)
  (global $heapscope:nest (;1;) (mut i32) i32.const 0)
  (global $heapscope:events (;2;) (mut i32) i32.const 1048576)
  (global $heapscope:events_cap (;3;) (mut i32) i32.const 65536)
  (export "memory" (memory 0))
  (export "_start" (func $main))
  (export "heapscope:memory:0" (memory 0))
  (export "heapscope:shadow" (memory 1))
  (export "heapscope:sp" (global $heapscope:sp))
  (export "heapscope:events" (global $heapscope:events))
  (export "heapscope:events_cap" (global $heapscope:events_cap))
  (func $heapscope:record (;6;) (type 5) (param i32 i64 i64 i64 i32)
    (local i32 i32)
    block ;; label = @1
      block ;; label = @2
        local.get 4
        i32.const 96
        i32.add
        global.get $heapscope:events_cap
        i32.gt_u
        br_if 0 (;@2;)
        global.get $heapscope:events
        local.get 4
        i32.const 96
        i32.add
        i32.add
        i32.const 1048576
        global.get $heapscope:events_cap
        i32.add
        i32.gt_u
        if ;; label = @3
          call $heapscope:flush
          global.get $heapscope:events
          local.get 4
          i32.const 96
          i32.add
          i32.add
          i32.const 1048576
          global.get $heapscope:events_cap
          i32.add
          i32.gt_u
          br_if 1 (;@2;)
        else
        end
        global.get $heapscope:events
        local.set 5
        local.get 5
        local.get 0
        i32.store 1
        local.get 5
        local.get 1
        i64.store 1 offset=4 align=4
        local.get 5
        local.get 2
        i64.store 1 offset=12 align=4
        local.get 5
        local.get 3
        i64.store 1 offset=20 align=4
        local.get 5
        local.get 4
        i32.store 1 offset=28
        i32.const 0
        local.set 6
        loop ;; label = @3
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 6
          i32.const 64
          i32.add
          local.tee 6
          local.get 4
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 5
        i32.const 32
        i32.add
        local.get 4
        i32.add
        global.set $heapscope:events
        br 1 (;@1;)
      end
      local.get 0
      i32.const 24
      i32.shr_u
      i32.const 1
      i32.eq
      if ;; label = @2
        local.get 0
        i32.const 16777215
        i32.and
        local.get 1
        local.get 4
        call $heapscope:free
      else
        local.get 0
        i32.const 24
        i32.shr_u
        i32.const 2
        i32.eq
        if ;; label = @3
          local.get 0
          i32.const 16777215
          i32.and
          local.get 1
          local.get 2
          local.get 3
          local.get 4
          call $heapscope:realloc
        else
          local.get 0
          i32.const 24
          i32.shr_u
          i32.const 0
          i32.eq
          if ;; label = @4
            local.get 0
            i32.const 16777215
            i32.and
            local.get 1
            local.get 2
            local.get 3
            local.get 4
            call $heapscope:alloc
          else
          end
        end
      end
    end
  )
  (func $malloc (;7;) (type 2) (param i32) (result i32)
    (local i32 i32 i32 i32 i32 i64 i64 i64)
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
      local.get 1
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      i64.const 0
      local.set 8
      local.set 7
      local.set 6
      i32.const 1
      local.set 3
      global.get $heapscope:events
      local.get 2
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 3
        local.get 6
        local.get 7
        local.get 8
        local.get 2
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 4
        local.get 4
        local.get 3
        i32.store 1
        local.get 4
        local.get 6
        i64.store 1 offset=4 align=4
        local.get 4
        local.get 7
        i64.store 1 offset=12 align=4
        local.get 4
        local.get 8
        i64.store 1 offset=20 align=4
        local.get 4
        local.get 2
        i32.store 1 offset=28
        i32.const 0
        local.set 5
        loop ;; label = @3
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 5
          i32.const 64
          i32.add
          local.tee 5
          local.get 2
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 4
        i32.const 32
        i32.add
        local.get 2
        i32.add
        global.set $heapscope:events
      end
    else
    end
    local.get 1
  )
  (func $free (;8;) (type 1) (param i32)
    (local i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 1
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 0
      i64.extend_i32_u
      i64.const 0
      i64.const 0
      local.set 7
      local.set 6
      local.set 5
      i32.const 16777220
      local.set 2
      global.get $heapscope:events
      local.get 1
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 2
        local.get 5
        local.get 6
        local.get 7
        local.get 1
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 3
        local.get 3
        local.get 2
        i32.store 1
        local.get 3
        local.get 5
        i64.store 1 offset=4 align=4
        local.get 3
        local.get 6
        i64.store 1 offset=12 align=4
        local.get 3
        local.get 7
        i64.store 1 offset=20 align=4
        local.get 3
        local.get 1
        i32.store 1 offset=28
        i32.const 0
        local.set 4
        loop ;; label = @3
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 4
          i32.const 64
          i32.add
          local.tee 4
          local.get 1
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 3
        i32.const 32
        i32.add
        local.get 1
        i32.add
        global.set $heapscope:events
      end
    else
    end
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
  )
  (func $heapscope:resize_heap (;9;) (type 2) (param i32) (result i32)
    (local i32 i32 i32)
    memory.size
    local.set 2
    local.get 0
    call $emscripten_resize_heap
    local.set 1
    memory.size
    local.set 3
    local.get 3
    local.get 2
    i32.ne
    if ;; label = @1
      i32.const 0
      local.get 3
      local.get 2
      i32.sub
      i64.extend_i32_u
      local.get 2
      i64.extend_i32_u
      global.get $heapscope:sp
      call $heapscope:grow
    else
      local.get 1
      i32.eqz
      if ;; label = @2
        i32.const 0
        i64.const 0
        i64.const -1
        global.get $heapscope:sp
        call $heapscope:grow
      else
      end
    end
    local.get 1
  )
  (func $malloc.heapscope_original (;10;) (type 2) (param i32) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
    i32.const 131072
    local.get 1
    i32.const 0
    i32.store 1
    local.get 2
    global.set $heapscope:sp
    call $heapscope:resize_heap
    drop
    i32.const 1024
  )
  (func $main (;11;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 5
    local.get 0
    i32.const 1
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $malloc
    drop
  )
  (func $heapscope:grow:0 (;12;) (type 2) (param i32) (result i32)
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
  (func $free.heapscope_original (;13;) (type 1) (param i32)
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
  (@custom "heapscope.sites" (after code) "\01\02\06malloc\04main\02\01\07\01\00\00\00\00\03\15\01\01\00\00\00")
  (@custom "heapscope.code_map" (after code) "\01\03\0a\01\8b\09#\03\00\06\0c\00\10\08\0b\03\af\09\1e\03\00&\0c\00\0e\04\0d\02\e7\09\0d\02\00 \0c\00")
)
